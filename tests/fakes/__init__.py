"""Local HTTP servers that answer as the WhatsApp providers document, errors included, and record
what they receive. Started by the tests; the only fakes in the suite (everything of ours is real)."""
