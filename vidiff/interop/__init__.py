"""Reading and writing other toolkits' model folders (diffusers), by parameter name, safetensors only."""
