"""The package version, in one place."""

__version__ = "0.2.0.dev0"  # after the first release, 0.1.0 (6d94904), whose records the code still reads
