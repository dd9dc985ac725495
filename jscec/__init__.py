"""Project-wide definitions every package may import (nothing here imports the others)."""
