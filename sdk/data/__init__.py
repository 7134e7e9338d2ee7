"""Pointwise data: records, files, validation, converters and splits."""
