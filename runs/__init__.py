"""The ledger: runs, episodes and steps kept in the database, and the per-instance run manager."""
