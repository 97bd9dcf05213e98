"""startup: `python3 hello.py`, the interpreter's start-up and exit plus one print, no imports."""

print("Hello, world!")
