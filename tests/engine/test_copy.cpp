// The strided copy behind contiguous(), clone and every view's materialisation: element by
// element against the view's own strides, for each path of the kernel (merged axes, short
// rows, the tiled transpose with partial tiles, strides from narrow, step and expand), and
// the same bits for 1 and 2 threads.
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {

void check_copy(const Tensor& view, const char* what) {
  CAPTURE(what);
  Tensor c = view.contiguous();
  REQUIRE(c.is_contiguous());
  REQUIRE(c.shape() == view.shape());
  int64_t bad = 0;
  for_each_index(view.shape(), [&](const Shape& idx) {
    int64_t flat = 0;
    for (size_t d = 0; d < idx.size(); ++d) flat = flat * view.shape()[d] + idx[d];
    bad += at(view, idx) != at(c.reshape({c.numel()}), {flat});
  });
  CHECK_MESSAGE(bad == 0, bad, " elements differ");
}

}  // namespace

TEST_CASE("contiguous copies of views equal the view element by element") {
  const int before = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    CAPTURE(threads);
    // the tiny CLIP's patchify, at 20 frames: rows of 4 elements, > 65536 elements (threaded)
    Tensor img = randn({20, 32, 16, 16}, 1, DType::F32);
    check_copy(img.reshape({20, 32, 4, 4, 4, 4}).permute({0, 2, 4, 1, 3, 5}), "patchify");
    // transposes with partial 16 x 16 tiles: 37 x 19, batched, threaded and not
    check_copy(randn({5, 37, 19}, 2).permute({0, 2, 1}), "batched transpose 37x19");
    check_copy(randn({300, 230}, 3, DType::F32).transpose(0, 1), "threaded transpose 300x230");
    check_copy(randn({7, 3}, 4).transpose(0, 1), "transpose narrower than a tile");
    // a transpose inside a narrowed window (offset, outer strides that do not merge)
    check_copy(randn({6, 40, 33}, 5).narrow(1, 3, 30).narrow(2, 2, 29).permute({2, 0, 1}), "narrowed transpose");
    // axes that merge, size-1 axes, an expanded (stride 0) axis, a step of 2
    check_copy(randn({4, 1, 6, 8}, 6).narrow(3, 0, 8).permute({1, 0, 2, 3}), "size-1 axis");
    check_copy(randn({3, 1, 5}, 7).expand({3, 4, 5}), "expanded");
    check_copy(randn({4, 10, 6}, 8).reshape({4, 5, 2, 6}).select(2, 1), "every other row");
    // integer and byte dtypes go through the same kernel by element size
    check_copy(rand_uniform({9, 20}, 9, 0, 0, 100, DType::F64).to(DType::I64).transpose(0, 1), "int64 transpose");
    check_copy(rand_uniform({17, 18}, 10, 0, 0, 200, DType::F64).to(DType::U8).transpose(0, 1), "uint8 transpose");
  }
  set_num_threads(before);
  // the bits of a threaded transpose do not depend on the thread count (a copy cannot round,
  // but the tiling splits the work differently)
  Tensor big = randn({64, 33, 47}, 11, DType::F32);
  set_num_threads(1);
  uint64_t one = hash_bits(big.permute({2, 0, 1}).contiguous());
  set_num_threads(2);
  uint64_t two = hash_bits(big.permute({2, 0, 1}).contiguous());
  set_num_threads(before);
  CHECK(one == two);
}
