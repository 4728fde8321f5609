"""Classification: bytes into lines (`framing`), lines into time, message and fields (`lines`),
lines into records (`grouping`), records against the rules (`rules`), and the fast scan of
whole buffers (`scan`) that `stream` drives for the daemon, `classify` and `replay`."""
