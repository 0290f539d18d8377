"""JSON-structure fingerprints of tool-response payloads: observe, summarise, compare."""
