"""One typed schema for every export file: the Arrow types a frame is written with, declared
in one place, and the same schema as the Hub's YAML ``dataset_info.features``."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from acquisition.editors import EDITORS


def _plain_arrow(t):
    """``large_string`` (what pandas' string dtype writes) as ``string``, inside lists and
    structs too, so a Parquet export has the types a JSON Lines export of it loads with."""
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_plain_arrow(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain_arrow(f.type)) for f in t])
    return t


# the type of a column that holds no value in this export (all null), so every export of every
# study writes one schema: the counts and ids are integers, scores floats, attribute flags
# booleans, everything else a string
_NULL_INTEGERS = {"strength", "latency_ms", "study_version", "origin_served_pair_id", "policy_version", "seed",
                  "annotator_id", "prompt_id", "served_pair_id", "turn", "position", "response_id", "base_response_id"}
_NULL_FLOATS = {"acquisition_score", "propensity_score", "arm_propensity", "objective_propensity", "margin", "tstamp",
                "weight"}


def _declared(name: str, t):
    if not pa.types.is_null(t):
        return t
    if name in _NULL_INTEGERS:
        return pa.int64()
    if name in _NULL_FLOATS or name.endswith("_propensity"):
        return pa.float64()
    if name.removesuffix("_assigned") in EDITORS:  # the effects format's flag of the shown response
        return pa.bool_()
    side, _, attribute = name.removesuffix("_assigned").partition("_")
    if side in ("left", "right", "chosen", "rejected", "a", "b") and attribute in EDITORS:
        return pa.bool_()
    return pa.string()



def arrow_table(df: pd.DataFrame) -> pa.Table:
    """``df`` as an Arrow table with the declared types: ``string`` (never ``large_string``),
    and a column with no value in this export typed as it is in every other export."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.cast(pa.schema([pa.field(f.name, _declared(f.name, _plain_arrow(f.type))) for f in table.schema]))


_DTYPES = {pa.string(): "string", pa.int64(): "int64", pa.float64(): "float64", pa.bool_(): "bool",
           pa.null(): "null"}


def _feature(name: str, t: pa.DataType) -> dict[str, Any]:
    """One column as the Hub's YAML writes a feature (``dtype``, ``list`` or ``struct``)."""
    if pa.types.is_list(t):
        inner = t.value_type
        if pa.types.is_struct(inner):
            return {"name": name, "list": [_feature(f.name, f.type) for f in inner]}
        return {"name": name, "sequence": _DTYPES.get(inner, str(inner))}
    if pa.types.is_struct(t):
        return {"name": name, "struct": [_feature(f.name, f.type) for f in t]}
    return {"name": name, "dtype": _DTYPES.get(t, str(t))}


def hub_features(df: pd.DataFrame) -> list[dict[str, Any]]:
    return schema_features(arrow_table(df).schema)


def schema_features(schema: pa.Schema) -> list[dict[str, Any]]:
    """An Arrow schema's columns as the Hub's YAML lists ``dataset_info.features``."""
    return [_feature(f.name, f.type) for f in schema]
