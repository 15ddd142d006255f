#include "tests/common/testing.h"

using namespace vc;
using namespace vc::testing;

TEST_CASE("smoke: add, matmul, backward") {
  Tensor a = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector<double>({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{2, 2});
  CHECK(values(c) == std::vector<double>{4, 5, 10, 11});
  gradcheck([](const TensorList& x) { return matmul(x[0], x[1]); }, {a, b}, "matmul");
  gradcheck([](const TensorList& x) {
    return softmax(matmul(x[1].narrow(0, 0, 2).transpose(0, 1), x[0]));
  }, {a, b}, "mix");
}
