"""The only code that talks to GitHub: its errors, the pure reading of its answers
(parse), the rate-limit gate, and the transport (client). It never imports the store:
the gate's block is shared through a BlockExchange that the caller implements."""
