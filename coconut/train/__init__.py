"""Training with Lightning: the only package (with cli) that imports it. Built from config pieces by build.py."""
