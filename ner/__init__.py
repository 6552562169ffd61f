"""Named entities and relations from raw text: one shared encoder, many heads, spaCy components."""
