"""Core layer: current state per source (customers with the population register, contracts, invoices,
consents, ASML, contacts) and metering per business day."""
