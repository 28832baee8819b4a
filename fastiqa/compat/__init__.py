"""Drop-in replacements for other libraries' APIs (same names, arguments, numbers)."""
