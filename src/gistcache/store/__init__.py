"""The only code that talks SQL: tables, engine set-up and repository functions."""
