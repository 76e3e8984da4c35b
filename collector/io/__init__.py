"""Data in and out: importers, the export frames and files, and the dataset card."""
