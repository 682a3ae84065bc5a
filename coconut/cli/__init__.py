"""The `coconut` command and its sub-commands; nothing in the package imports it."""
