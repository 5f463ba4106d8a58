"""Server-rendered HTML pages, one module per audience (citizen, staff)."""
