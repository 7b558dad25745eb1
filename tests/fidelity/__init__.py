"""Fidelity: the local ASL executor against moto's Step Functions engine on the same file."""
