"""Puts the project root on sys.path so ``python tracking/<script>.py`` finds ``lib``."""
import os
import sys

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
