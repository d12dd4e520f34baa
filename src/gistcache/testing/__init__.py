"""Test and demo support shipped with the package (the offline fake GitHub)."""
