"""The Annotate page's parts: the session (open project, saved edits), opening datasets, the
document editor and the sidebar (progress, labels, export)."""
