"""``python -m collector.app.serve [streamlit options]``: ``streamlit run app.py`` with the app's
own modules imported before the server opens, so the first visitor's page does not wait on them
(``make run`` serves this way; ``bench_boot`` measures it). The options are Streamlit's."""

from __future__ import annotations

import sys


def main() -> None:
    from streamlit.web import cli

    import collector.app.annotator  # noqa: F401 - imported now, not by the first visitor's script run
    import collector.app.state  # noqa: F401
    import collector.serving.service  # noqa: F401
    from collector.app import APP_SCRIPT

    sys.argv = ["streamlit", "run", str(APP_SCRIPT), *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
