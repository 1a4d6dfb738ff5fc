"""SLAM plugin: LoRA adapters through peft (``type: lora``)."""
