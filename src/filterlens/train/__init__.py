"""The models this workflow trains itself: the mini zoo's data and training, the CIFAR recipe, PGD."""
