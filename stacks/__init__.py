"""The platform's CDK stacks; each wires constructs together and holds no big logic."""
