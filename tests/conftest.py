"""Shared fixtures: small, seeded problems where every quantity has a closed form."""

import pytest
import torch

from labkit import data


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def gmm64(gen):
    """A 3-D mixture with unequal weights and a non-identity covariance, float64."""
    means = torch.tensor([[1.0, -2.0, 0.5], [-1.5, 0.5, 2.0], [0.0, 2.5, -1.0]], dtype=torch.float64)
    a = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.7, 0.2], [0.1, 0.0, 0.5]], dtype=torch.float64)
    return data.GaussianMixture(means, cov=a @ a.T + 0.05 * torch.eye(3, dtype=torch.float64),
                                weights=torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))


@pytest.fixture
def paper_gmm(gen):
    """The paper's mixture (K = 8, mu ~ N(0, 4 I), identity covariance) at d = 4, float64."""
    return data.make_gmm(8, 4, generator=gen, dtype=torch.float64)
