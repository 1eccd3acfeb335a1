"""Custom Keras layers of MD-CSDNetwork."""
