"""filterlens: the library behind the workflow that reproduces "Adversarial Robustness
through the Lens of Convolutional Filters" (Gavrikov & Keuper, CVPR-W 2022).

Modules take arrays and return arrays or small tables; only the workflow scripts read and
write files.
"""

__version__ = "0.1.0"
