"""HTTP entry points and the services they share with the emulator. No Azure SDK imports."""
