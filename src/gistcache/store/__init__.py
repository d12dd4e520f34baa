"""The only code that talks SQL: tables, engine set-up and repository functions. What
the database does wrong leaves the store as one of its own errors (store.errors)."""
