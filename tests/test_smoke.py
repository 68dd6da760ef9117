import numpy as np

import fastadam as fa


def test_first_adam_step_moves_each_element_by_lr():
    x = np.array([1.0, -2.0, 3.0])
    opt = fa.Adam(x, lr=0.1)
    opt.step(2 * x)
    np.testing.assert_allclose(x, [0.9, -1.9, 2.9], rtol=1e-8)
    assert opt.t == 1
