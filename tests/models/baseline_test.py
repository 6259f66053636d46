import pytest

from ferzoo.models import Baseline
from tests.test_case import MethodTestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_batch


class BaselineTest(MethodTestCase):
    def setUp(self):
        super().setUp()
        self.kwargs = {"backbone": tiny_backbone(), "num_samples": 16}
        self.data = tiny_batch(16, size=32)

    def test_method_basics(self):
        self.run_method_test(Baseline, self.kwargs, self.data, (16, 7))

    @pytest.mark.large
    def test_round_trips(self):
        self.run_model_saving_test(Baseline, self.kwargs, self.data)
        self.run_backend_consistency_test(Baseline, self.kwargs, self.data)
        self.run_export_test(Baseline, self.kwargs, self.data)
