"""The regulator console's logic, apart from HTTP: filters, explorer and verification views,
activity figures and plots, disclosure reports, texts in Chinese and English.

Everything is computed from the ledger's own entries (self-contained, see DESIGN.md "Ledger
entry"), so the console needs nothing of the platform but the ledger database: a regulator can
run it alone. The pages themselves are in :mod:`ledger.service.pages`.
"""
