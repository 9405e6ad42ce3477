"""The shared core (DESIGN §2): plain data types, constants and conversions that
every layer above may use (axes, rotations' conventions, limits, small numeric
and file helpers). It imports nothing from the rest of the backend but `config`."""
