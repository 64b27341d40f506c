"""flmngr-linreg: federated linear regression with NumPy."""
