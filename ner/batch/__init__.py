"""Batch extraction over folders of documents: reading every format safely, resumable atomic output,
local worker processes and Ray (issue 5; the readers come first)."""
