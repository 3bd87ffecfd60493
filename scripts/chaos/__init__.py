"""The chaos driver (`./taskw chaos`): see scripts/chaos/driver.py and docs/reliability.md."""
