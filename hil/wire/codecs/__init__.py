"""The codec functions of the shipped wire profiles (one module per format)."""
