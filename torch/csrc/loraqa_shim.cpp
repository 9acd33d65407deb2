// loraqa's C++ shim: the few LibTorch calls gotch's generated wrappers lack,
// above all the multi-tensor ones (Tensor[] in, Tensor[] out) that make a
// training step's optimizer, clipping and zero-grad one call each instead of
// one call per parameter and op. tools/setup copies this file into a cgo
// package of the generated gotch copy, compiled with LibTorch's headers.
//
// Tensors cross as gotch's handles (torch::Tensor*). Every function catches
// what LibTorch throws and returns it as a malloc'd message (NULL on success);
// the Go side (torch/shim.go) frees it and panics with it as gotch would.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define LORAQA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace {

char* fail(const char* what) { return strdup(what); }

#define LORAQA_TRY try {
#define LORAQA_CATCH                                      \
  }                                                       \
  catch (const c10::Error& e) {                           \
    return fail(e.what_without_backtrace());              \
  }                                                       \
  catch (const std::exception& e) {                       \
    return fail(e.what());                                \
  }                                                       \
  catch (...) {                                           \
    return fail("unknown C++ exception in loraqa's shim"); \
  }                                                       \
  return nullptr;

at::Tensor& T(void* p) { return *static_cast<at::Tensor*>(p); }

std::vector<at::Tensor> list(void** ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

// grads returns the defined gradients of params, and (in idx) the positions
// of their parameters.
std::vector<at::Tensor> grads(void** params, int n, std::vector<int>* idx) {
  std::vector<at::Tensor> g;
  for (int i = 0; i < n; i++) {
    const at::Tensor& gi = T(params[i]).grad();
    if (gi.defined()) {
      g.push_back(gi);
      if (idx) idx->push_back(i);
    }
  }
  return g;
}

void* handle(const at::Tensor& t) { return new at::Tensor(t); }

// anyNonFinite is a bool tensor on the tensors' device: whether any of ts holds
// an inf or a NaN. Nothing is read on the host.
at::Tensor anyNonFinite(const std::vector<at::Tensor>& ts, const at::Tensor& like) {
  at::Tensor found = at::zeros({}, like.options().dtype(at::kBool));
  for (const auto& t : ts) found.logical_or_(at::isfinite(t).logical_not().any());
  return found;
}

}  // namespace

extern "C" {

// loraqa_zero_grad zeroes every defined gradient of params in place.
char* loraqa_zero_grad(void** params, int n) {
  LORAQA_TRY
  at::NoGradGuard ng;
  auto g = grads(params, n, nullptr);
  if (!g.empty()) at::_foreach_zero_(g);
  LORAQA_CATCH
}

// loraqa_clip_grad_norm is torch.nn.utils.clip_grad_norm_ without a host read:
// the total L2 norm of the gradients (norm of the per-tensor norms), and the
// gradients multiplied by min(1, max_norm / (total + 1e-6)) when max_norm > 0.
// The coefficient is computed in float64 from the float32 total, as loraqa did
// on the host, so the clipped gradients are the same bits. *total_out gets the
// total norm (a float32 0-dim tensor on the device; zero without gradients);
// *found_out, when not NULL, a bool tensor: the norm or any of the extra
// tensors (the step's losses) is not finite.
char* loraqa_clip_grad_norm(void** params, int n, double max_norm, void** extra, int nextra, void** total_out,
                            void** found_out) {
  LORAQA_TRY
  at::NoGradGuard ng;
  auto g = grads(params, n, nullptr);
  at::Tensor total;
  if (g.empty()) {
    total = at::zeros({}, T(params[0]).options().dtype(at::kFloat));
  } else {
#if LORAQA_TORCH_AT_LEAST(2, 0)
    auto norms = at::_foreach_norm(g, 2);
#else
    std::vector<at::Tensor> norms;
    for (const auto& t : g) norms.push_back(t.norm());
#endif
    total = at::stack(norms, 0).norm();
    if (max_norm > 0) {
      at::Tensor coef = at::div(at::scalar_tensor(max_norm, total.options().dtype(at::kDouble)),
                                total.to(at::kDouble).add(1e-6))
                            .clamp_max(1.0);
#if LORAQA_TORCH_AT_LEAST(2, 1)
      at::_foreach_mul_(g, coef);
#else
      for (auto& t : g) t.mul_(coef);
#endif
    }
  }
  if (found_out) {
    std::vector<at::Tensor> check{total};
    for (int i = 0; i < nextra; i++) check.push_back(T(extra[i]));
    *found_out = handle(anyNonFinite(check, total));
  }
  *total_out = handle(total);
  LORAQA_CATCH
}

// loraqa_adamw_foreach is torch.optim.AdamW's step (or, with hf, transformers
// 4.x's AdamW) over all params with a gradient, in multi-tensor ops; decay[i]
// says whether params[i] takes weight decay. bc1 = 1 - beta1^t and
// bc2 = sqrt(1 - beta2^t) come from the caller. The arithmetic is op for op
// the per-tensor step loraqa ran before (train/optim_test.go holds it), so the
// results are the same bits on the CPU.
//
// found_inf (NULL for none) is a bool tensor: when true, the step is skipped
// and *skipped is set. Reading it is free on the CPU; on CUDA it waits for the
// device, and *synced says so (the fused step never waits).
char* loraqa_adamw_foreach(void** params, void** ms, void** vs, int n, const int* decay, double lr, double beta1,
                           double beta2, double eps, double wd, double bc1, double bc2, int hf, void* found_inf,
                           int* skipped, int* synced) {
  LORAQA_TRY
  at::NoGradGuard ng;
  *skipped = 0;
  *synced = 0;
  if (found_inf) {
    const at::Tensor& f = T(found_inf);
    if (!f.device().is_cpu()) *synced = 1;
    if (f.item<bool>()) {
      *skipped = 1;
      return nullptr;
    }
  }
  std::vector<int> idx;
  auto g = grads(params, n, &idx);
  if (g.empty()) return nullptr;
  std::vector<at::Tensor> p, m, v, pd;
  for (int i : idx) {
    p.push_back(T(params[i]));
    m.push_back(T(ms[i]));
    v.push_back(T(vs[i]));
    if (decay[i] && wd != 0) pd.push_back(T(params[i]));
  }
  if (!hf && !pd.empty()) at::_foreach_mul_(pd, 1 - lr * wd);
  at::_foreach_mul_(m, beta1);
  {
    auto gm = at::_foreach_mul(g, 1 - beta1);
    at::_foreach_add_(m, gm);
  }
  at::_foreach_mul_(v, beta2);
  {
    auto g2 = at::_foreach_mul(g, g);
    at::_foreach_mul_(g2, 1 - beta2);
    at::_foreach_add_(v, g2);
  }
  auto denom = at::_foreach_sqrt(v);
  double step = lr / bc1;
  if (hf) {
    step *= bc2;
  } else {
    at::_foreach_div_(denom, bc2);
  }
  at::_foreach_add_(denom, eps);
  auto upd = at::_foreach_div(m, denom);
  denom.clear();
  at::_foreach_mul_(upd, step);
  at::_foreach_sub_(p, upd);
  if (hf && !pd.empty()) at::_foreach_mul_(pd, 1 - lr * wd);
  LORAQA_CATCH
}

// loraqa_adamw_fused is torch.optim.AdamW(fused=True)'s step: one kernel over
// all params, with the step counts (float32 0-dim tensors, one per param) on
// the device, advanced here. found_inf (or NULL) skips the step on the device, without a
// host read; grad_scale (or NULL) divides the gradients first. decay[i] picks
// the group: weight decay wd, or none.
char* loraqa_adamw_fused(void** params, void** ms, void** vs, void** steps, int n, const int* decay, double lr,
                         double beta1, double beta2, double eps, double wd, void* grad_scale, void* found_inf) {
  LORAQA_TRY
#if LORAQA_TORCH_AT_LEAST(2, 0)
  at::NoGradGuard ng;
  c10::optional<at::Tensor> gs, fi;
  if (grad_scale) gs = T(grad_scale);
  if (found_inf) fi = T(found_inf).to(at::kFloat);
  for (int group = 0; group < 2; group++) {
    std::vector<at::Tensor> p, g, m, v, s;
    for (int i = 0; i < n; i++) {
      bool d = decay[i] && wd != 0;
      if (d != (group == 0)) continue;
      const at::Tensor& gi = T(params[i]).grad();
      if (!gi.defined()) continue;
      p.push_back(T(params[i]));
      g.push_back(gi);
      m.push_back(T(ms[i]));
      v.push_back(T(vs[i]));
      s.push_back(T(steps[i]));
    }
    if (p.empty()) continue;
    // As torch.optim.AdamW does around the kernel, which reads the counts:
    // one more step, taken back where found_inf says the step was skipped.
    at::_foreach_add_(s, 1);
    at::_fused_adamw_(p, g, m, v, {}, s, lr, beta1, beta2, group == 0 ? wd : 0.0, eps, false, false, gs, fi);
    if (fi) {
      for (auto& st : s) st.sub_(*fi);
    }
  }
#else
  return fail("the fused AdamW needs LibTorch 2.0 or newer");
#endif
  LORAQA_CATCH
}

// loraqa_unscale is GradScaler.unscale_: every defined gradient of params
// multiplied by inv_scale (a float32 0-dim tensor), and found_inf (a float32
// tensor of one value) set to 1 when any of them held an inf or a NaN before.
// On CUDA LibTorch's own kernel does it; on the CPU the same arithmetic in
// plain ops (the values are checked before they are scaled).
char* loraqa_unscale(void** params, int n, void* found_inf, void* inv_scale) {
  LORAQA_TRY
  at::NoGradGuard ng;
  auto g = grads(params, n, nullptr);
  if (g.empty()) return nullptr;
  at::Tensor& found = T(found_inf);
  const at::Tensor& inv = T(inv_scale);
  if (!g[0].device().is_cpu()) {
    at::_amp_foreach_non_finite_check_and_unscale_(g, found, inv);
    return nullptr;
  }
  found.logical_or_(anyNonFinite(g, found)).clamp_max_(1);
  for (auto& t : g) t.mul_(inv);
  LORAQA_CATCH
}

// loraqa_update_scale is GradScaler.update (torch._amp_update_scale_) on the
// device: after a step with an inf or NaN the scale is multiplied by backoff
// and the growth tracker reset; after growth_interval finite steps in a row
// the scale is multiplied by growth (when the result is finite) and the
// tracker reset. scale is float32, tracker int32, found_inf float32, each of
// one value.
char* loraqa_update_scale(void* scale, void* tracker, void* found_inf, double growth, double backoff,
                          int64_t interval) {
  LORAQA_TRY
  at::NoGradGuard ng;
  at::Tensor& s = T(scale);
  at::Tensor& t = T(tracker);
  at::Tensor f = T(found_inf).gt(0);
  at::Tensor succ = t.add(1);
  at::Tensor grow = f.logical_not().logical_and(succ.eq(interval));
  at::Tensor grown = s.mul(growth);
  at::Tensor growOK = grow.logical_and(at::isfinite(grown));
  at::Tensor next = at::where(f, s.mul(backoff), at::where(growOK, grown, s));
  at::Tensor nextT = at::where(f.logical_or(grow), at::zeros_like(succ), succ);
  s.copy_(next);
  t.copy_(nextT);
  LORAQA_CATCH
}

// loraqa_cuda_settings applies train.tf32 and train.deterministic: TF32 for
// float32 matmuls (and cuDNN) on or off; deterministic algorithms, a
// deterministic cuDNN without autotuning, and cuBLAS's fixed workspace
// (CUBLAS_WORKSPACE_CONFIG, unless set, which must happen before the first
// cuBLAS call). Both are off by default, as in PyTorch.
char* loraqa_cuda_settings(int tf32, int deterministic) {
  LORAQA_TRY
  auto& ctx = at::globalContext();
  ctx.setAllowTF32CuBLAS(tf32 != 0);
  if (tf32) ctx.setAllowTF32CuDNN(true);
  if (deterministic) {
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
    ctx.setDeterministicCuDNN(true);
    ctx.setBenchmarkCuDNN(false);
  }
  ctx.setDeterministicAlgorithms(deterministic != 0, false);
  LORAQA_CATCH
}

// loraqa_pinned_empty makes an uninitialised int64 tensor of n values in
// page-locked host memory (for one non-blocking copy to a CUDA device).
char* loraqa_pinned_empty(int64_t n, void** out) {
  LORAQA_TRY
  *out = handle(at::empty({n}, at::TensorOptions().dtype(at::kLong).pinned_memory(true)));
  LORAQA_CATCH
}

// loraqa_full0 makes a 0-dim tensor holding v, of ScalarType dtype, on the
// CPU (device < 0) or on CUDA device `device` (gotch's shapes cannot be empty).
char* loraqa_full0(double v, int dtype, int device, void** out) {
  LORAQA_TRY
  auto opts = at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype));
  if (device >= 0) opts = opts.device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device)));
  *out = handle(at::full({}, v, opts));
  LORAQA_CATCH
}

// loraqa_copy_async copies src into dst (same shape and dtype) without
// waiting for the device when src is pinned host memory.
char* loraqa_copy_async(void* dst, void* src) {
  LORAQA_TRY
  T(dst).copy_(T(src), true);
  LORAQA_CATCH
}

}  // extern "C"

#include <dlfcn.h>

extern "C" {

// loraqa_cuda_mem_used is the memory in use on the current CUDA device, in
// bytes (cudaMemGetInfo: total − free, LibTorch's cache included), or −1
// where no CUDA runtime is loaded or no device answers. The runtime is found
// in the process (LibTorch links it), so no CUDA header is needed.
int64_t loraqa_cuda_mem_used() {
  using memGetInfo = int (*)(size_t*, size_t*);
  auto f = reinterpret_cast<memGetInfo>(dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
  if (!f) return -1;
  size_t free = 0, total = 0;
  if (f(&free, &total) != 0) return -1;
  return static_cast<int64_t>(total - free);
}

}  // extern "C"

#if LORAQA_TORCH_AT_LEAST(2, 9) && __has_include(<ATen/DeviceAccelerator.h>)
#include <ATen/DeviceAccelerator.h>
#define LORAQA_ACCELERATOR_CACHE 1
#endif

extern "C" {

// loraqa_empty_cuda_cache hands the CUDA caching allocator's free blocks back
// to the driver (torch.cuda.empty_cache) and returns 1, or returns 0 where
// this LibTorch offers no header-free way to (before 2.9: the allocator's
// API needs CUDA's headers) or no accelerator is present.
int loraqa_empty_cuda_cache() {
#ifdef LORAQA_ACCELERATOR_CACHE
  try {
    auto acc = at::accelerator::getAccelerator(false);
    if (!acc.has_value() || *acc != at::kCUDA) return 0;
    at::accelerator::emptyCache();
    return 1;
  } catch (...) {
    return 0;
  }
#else
  return 0;
#endif
}

}  // extern "C"

// ---- int8: dynamically quantized linears ------------------------------------
//
// torch.ao.quantization.quantize_dynamic with per_channel_dynamic_qconfig, on
// a linear: the weight quantized once to qint8 per output row (symmetric:
// PerChannelMinMaxObserver's scale max(|min|, |max|) / 127.5, at least float32's
// eps, zero point 0) and prepacked by quantized::linear_prepack on the fbgemm
// engine; every call quantized::linear_dynamic: the float32 input quantized
// per tensor to uint8 from its own min and max, int8·uint8 products
// accumulated in int32, the result float32 with the bias added. With
// reduce_range, as torch.ao.nn.quantized.dynamic.Linear (version 4) calls it,
// the input gets 7 bits: fbgemm's AVX2/AVX-512 kernels sum pairs of products
// in int16, which 8 bits could saturate; VNNI sums in int32, so 8 bits are
// safe there and halve the activations' rounding error.
// The ops are reached through the dispatcher with boxed (IValue) arguments, so
// no header of the packed-params class is needed.

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/ivalue.h>
#include <c10/core/QEngine.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>

namespace {

// qlinear is what a handle points to: the packed weight (an IValue holding
// LibTorch's LinearPackedParamsBase custom-class object, or an embedding's
// EmbeddingPackedParamsBase).
struct qlinear {
  c10::IValue packed;
  bool reduceRange;  // 7-bit activations (else 8)
};

std::atomic<int64_t> liveQLinears{0};

// fbgemmEngine checks that this LibTorch has the fbgemm quantized engine and
// makes it the process's (torch.backends.quantized.engine = "fbgemm"); it
// returns an error message otherwise (empty on success).
std::string fbgemmEngine() {
  auto& ctx = at::globalContext();
  const auto& engines = ctx.supportedQEngines();
  if (std::find(engines.begin(), engines.end(), at::QEngine::FBGEMM) == engines.end()) {
    std::string have;
    for (auto e : engines) {
      if (e == at::QEngine::NoQEngine) continue;
      have += (have.empty() ? "" : ", ") + c10::toString(e);
    }
    return "int8 needs LibTorch's fbgemm quantized engine (x86-64), which this LibTorch " TORCH_VERSION
           " lacks (its quantized engines: " +
           (have.empty() ? std::string("none") : have) + "); use fp32 or bf16, or PyPI's LibTorch";
  }
  if (ctx.qEngine() != at::QEngine::FBGEMM) ctx.setQEngine(at::QEngine::FBGEMM);
  return "";
}

// lazyOp is a registered operator, looked up on first use (a lookup that
// throws, because this LibTorch lacks it, is tried again next time).
class lazyOp {
 public:
  explicit lazyOp(const char* name) : name_(name) {}

  // find looks the operator up; it throws when LibTorch has none.
  const c10::OperatorHandle& find() {
    std::call_once(once_, [this] { op_.emplace(c10::Dispatcher::singleton().findSchemaOrThrow(name_, "")); });
    return *op_;
  }

  // call runs the operator on stack and returns its one result.
  c10::IValue call(std::vector<c10::IValue>& stack) {
    find().callBoxed(&stack);
    TORCH_CHECK(stack.size() == 1, name_, " returned ", stack.size(), " values");
    return std::move(stack[0]);
  }

 private:
  const char* name_;
  std::once_flag once_;
  c10::optional<c10::OperatorHandle> op_;
};

// matrixToQuantize is the float32 copy of h, a 2-D CPU tensor about to be
// quantized, after checking that fbgemm runs here; it throws otherwise,
// naming what (the weight, the table) and the shape it must have.
at::Tensor matrixToQuantize(void* h, const char* what, const char* shape) {
  std::string err = fbgemmEngine();
  TORCH_CHECK(err.empty(), err);
  const at::Tensor& w = T(h);
  TORCH_CHECK(w.dim() == 2, what, " must be ", shape, ", got ", w.sizes());
  TORCH_CHECK(w.device().is_cpu(), what, " must be on the CPU, got ", w.device());
  return w.to(at::kFloat).contiguous();
}

lazyOp linearPrepack("quantized::linear_prepack");
lazyOp linearDynamic("quantized::linear_dynamic");
lazyOp embeddingPrepack("quantized::embedding_bag_prepack");
lazyOp embeddingByte("quantized::embedding_byte");

}  // namespace

extern "C" {

// loraqa_qlinear_check returns NULL when int8 linears can run here (LibTorch
// has fbgemm and both quantized ops), or why not.
char* loraqa_qlinear_check() {
  LORAQA_TRY
  std::string err = fbgemmEngine();
  if (!err.empty()) return fail(err.c_str());
  linearPrepack.find();
  linearDynamic.find();
  LORAQA_CATCH
}

// loraqa_qlinear_prepack quantizes weight (float32 [out, in], CPU) per output
// row to qint8 and prepacks it with bias (float32 [out], or NULL) for fbgemm.
// *out gets the handle, which loraqa_qlinear_free releases; *scales_out, when
// not NULL, the per-row scales (float64 [out], a tensor handle). The handle's
// forwards quantize their inputs to 7 bits when reduce_range, else to 8.
char* loraqa_qlinear_prepack(void* weight, void* bias, int reduce_range, void** out, void** scales_out) {
  LORAQA_TRY
  at::NoGradGuard ng;
  at::Tensor wf = matrixToQuantize(weight, "int8 linear: the weight", "[out, in]");
  // PerChannelMinMaxObserver(qint8, per_channel_symmetric): quant range
  // [-128, 127], scale = max(-min(min, 0), max(max, 0)) / ((127 - -128) / 2),
  // clamped below by float32's eps; zero points 0.
  at::Tensor mn = at::amin(wf, {1});
  at::Tensor mx = at::amax(wf, {1});
  mn = at::minimum(mn, at::zeros_like(mn));
  mx = at::maximum(mx, at::zeros_like(mx));
  at::Tensor maxPos = at::maximum(mn.neg(), mx);
  at::Tensor scale = maxPos.div(255.0 / 2);
  scale = at::maximum(scale, at::full({1}, std::numeric_limits<float>::epsilon(), scale.options()));
  at::Tensor scaleD = scale.to(at::kDouble);
  at::Tensor zp = at::zeros({wf.size(0)}, wf.options().dtype(at::kLong));
  at::Tensor qw = at::quantize_per_channel(wf, scaleD, zp, 0, at::kQInt8);
  std::vector<c10::IValue> stack;
  stack.emplace_back(qw);
  if (bias) {
    const at::Tensor& b = T(bias);
    TORCH_CHECK(b.dim() == 1 && b.size(0) == wf.size(0), "int8 linear: the bias must be [", wf.size(0), "], got ",
                b.sizes());
    stack.emplace_back(b.to(at::kFloat).contiguous());
  } else {
    stack.emplace_back(c10::IValue());
  }
  auto* q = new qlinear{linearPrepack.call(stack), reduce_range != 0};
  liveQLinears++;
  *out = q;
  if (scales_out) *scales_out = handle(scaleD);
  LORAQA_CATCH
}

// loraqa_qlinear_forward is y = quantized::linear_dynamic(x, packed,
// reduce_range): x float32 [.., in] on the CPU, y float32 [.., out].
char* loraqa_qlinear_forward(void* h, void* x, void** out) {
  LORAQA_TRY
  at::NoGradGuard ng;
  const at::Tensor& in = T(x);
  TORCH_CHECK(in.scalar_type() == at::kFloat, "int8 linear: the input must be float32, got ", in.scalar_type());
  std::vector<c10::IValue> stack;
  stack.reserve(3);
  stack.emplace_back(in);
  auto* q = static_cast<qlinear*>(h);
  stack.emplace_back(q->packed);
  stack.emplace_back(q->reduceRange);
  c10::IValue r = linearDynamic.call(stack);
  TORCH_CHECK(r.isTensor(), "quantized::linear_dynamic returned no tensor");
  *out = handle(r.toTensor());
  LORAQA_CATCH
}

// loraqa_qlinear_free releases a handle of loraqa_qlinear_prepack.
void loraqa_qlinear_free(void* h) {
  if (!h) return;
  delete static_cast<qlinear*>(h);
  liveQLinears--;
}

// loraqa_qlinear_live is the number of handles not yet freed.
int64_t loraqa_qlinear_live() { return liveQLinears.load(); }

}  // extern "C"

// ---- int8: weight-only quantized embeddings ---------------------------------
//
// torch.ao's nn.quantized.Embedding, as quantize_dynamic makes it with
// float_qparams_weight_only_qconfig: each row of the table quantized to quint8
// with its own float scale and zero point (PerChannelMinMaxObserver,
// per_channel_affine_float_qparams: scale (max - min) / 255, 1 where that is
// below float32's eps, zero point -min / scale), packed by
// quantized::embedding_bag_prepack; a lookup is quantized::embedding_byte,
// which returns float32 rows. A quarter of the float32 table's memory.

extern "C" {

// loraqa_qembedding_quantize quantizes table (float32 [rows, dim], CPU) row
// by row to quint8; *out gets the quantized tensor, a tensor handle, which
// loraqa_qembedding_pack packs.
char* loraqa_qembedding_quantize(void* table, void** out) {
  LORAQA_TRY
  at::NoGradGuard ng;
  at::Tensor wf = matrixToQuantize(table, "int8 embedding: the table", "[rows, dim]");
  auto mm = at::aminmax(wf, 1);
  const at::Tensor& mn = std::get<0>(mm);
  const at::Tensor& mx = std::get<1>(mm);
  at::Tensor scale = (mx - mn) / 255.0;
  scale = at::where(scale > std::numeric_limits<float>::epsilon(), scale, at::ones_like(scale));
  at::Tensor zp = (mn * -1) / scale;
  *out = handle(at::quantize_per_channel(wf, scale, zp, 0, at::kQUInt8));
  LORAQA_CATCH
}

// loraqa_qembedding_pack packs a table loraqa_qembedding_quantize made for
// fbgemm; *out gets the handle (loraqa_qlinear_free releases it, as the
// packed linears').
char* loraqa_qembedding_pack(void* qtable, void** out) {
  LORAQA_TRY
  at::NoGradGuard ng;
  std::vector<c10::IValue> stack;
  stack.emplace_back(T(qtable));
  auto* q = new qlinear{embeddingPrepack.call(stack), false};
  liveQLinears++;
  *out = q;
  LORAQA_CATCH
}

// loraqa_qembedding_forward is quantized::embedding_byte(packed, ids): ids
// int64 on the CPU, the result float32 [ids..., dim].
char* loraqa_qembedding_forward(void* h, void* ids, void** out) {
  LORAQA_TRY
  at::NoGradGuard ng;
  const at::Tensor& in = T(ids);
  TORCH_CHECK(in.scalar_type() == at::kLong || in.scalar_type() == at::kInt,
              "int8 embedding: the ids must be int64 or int32, got ", in.scalar_type());
  std::vector<c10::IValue> stack;
  stack.reserve(3);
  stack.emplace_back(static_cast<qlinear*>(h)->packed);
  stack.emplace_back(in.contiguous());
  stack.emplace_back(false);  // pruned_weights
  c10::IValue r = embeddingByte.call(stack);
  TORCH_CHECK(r.isTensor(), "quantized::embedding_byte returned no tensor");
  *out = handle(r.toTensor());
  LORAQA_CATCH
}

}  // extern "C"

// ---- prepacked oneDNN linears ----------------------------------------------
//
// What torch.compile's CPU backend does with a frozen linear: the weight
// reordered once into oneDNN's blocked layout (mkldnn::_reorder_linear_weight)
// and every call mkldnn::_linear_pointwise on it, instead of at::linear
// packing the weight again on each call. Reached through the dispatcher, so
// a LibTorch without these ops (Debian's 1.13) compiles the shim and says so
// at run time.

namespace {

const c10::OperatorHandle* mkldnnOp(const char* name) {
  auto op = c10::Dispatcher::singleton().findSchema({name, ""});
  if (!op) return nullptr;
  static std::vector<std::unique_ptr<c10::OperatorHandle>> keep;
  keep.push_back(std::make_unique<c10::OperatorHandle>(*op));
  return keep.back().get();
}

const c10::OperatorHandle* reorderLinearOp() {
  static const c10::OperatorHandle* op = mkldnnOp("mkldnn::_reorder_linear_weight");
  return op;
}

const c10::OperatorHandle* linearPointwiseOp() {
  static const c10::OperatorHandle* op = mkldnnOp("mkldnn::_linear_pointwise");
  return op;
}

}  // namespace

extern "C" {

// loraqa_packed_linear_check returns NULL when this LibTorch can prepack
// linears for oneDNN, or why not.
char* loraqa_packed_linear_check() {
  LORAQA_TRY
  if (!at::globalContext().userEnabledMkldnn() || !at::hasMKLDNN())
    return fail("prepacked linears need LibTorch with oneDNN (mkldnn), which this LibTorch " TORCH_VERSION " lacks or has off");
  if (!reorderLinearOp() || !linearPointwiseOp())
    return fail("prepacked linears need mkldnn::_reorder_linear_weight and mkldnn::_linear_pointwise, which LibTorch " TORCH_VERSION " lacks");
  LORAQA_CATCH
}

// loraqa_packed_linear_prepack reorders weight ([out, in], CPU, float32 or
// bfloat16) into oneDNN's layout; *out gets the packed tensor's handle.
char* loraqa_packed_linear_prepack(void* weight, void** out) {
  LORAQA_TRY
  at::NoGradGuard ng;
  TORCH_CHECK(reorderLinearOp(), "mkldnn::_reorder_linear_weight is missing");
  const at::Tensor& w = T(weight);
  TORCH_CHECK(w.dim() == 2 && w.device().is_cpu(), "prepacked linear: the weight must be [out, in] on the CPU, got ", w.sizes(), " on ", w.device());
  std::vector<c10::IValue> stack;
  stack.emplace_back(w.contiguous());
  stack.emplace_back(c10::IValue());  // batch_size: any
  reorderLinearOp()->callBoxed(&stack);
  TORCH_CHECK(stack.size() == 1 && stack[0].isTensor(), "mkldnn::_reorder_linear_weight returned no tensor");
  *out = handle(stack[0].toTensor());
  LORAQA_CATCH
}

// loraqa_packed_linear_forward is x·Wᵀ + b through a packed weight: x [.., in]
// in the weight's dtype, bias [out] or NULL.
char* loraqa_packed_linear_forward(void* x, void* packed, void* bias, void** out) {
  LORAQA_TRY
  at::NoGradGuard ng;
  TORCH_CHECK(linearPointwiseOp(), "mkldnn::_linear_pointwise is missing");
  std::vector<c10::IValue> stack;
  stack.reserve(6);
  stack.emplace_back(T(x));
  stack.emplace_back(T(packed));
  if (bias) stack.emplace_back(T(bias)); else stack.emplace_back(c10::IValue());
  stack.emplace_back(std::string("none"));
  stack.emplace_back(c10::List<c10::optional<at::Scalar>>());
  stack.emplace_back(std::string(""));
  linearPointwiseOp()->callBoxed(&stack);
  TORCH_CHECK(stack.size() == 1 && stack[0].isTensor(), "mkldnn::_linear_pointwise returned no tensor");
  *out = handle(stack[0].toTensor());
  LORAQA_CATCH
}

}  // extern "C"

// ---- attention without a mask -----------------------------------------------

extern "C" {

// loraqa_sdpa_unmasked is scaled_dot_product_attention(q, k, v) with no mask
// and no dropout: the call transformers makes when no key is padding. gotch's
// wrapper always passes a mask, and with one LibTorch's CPU dispatch (before
// 2.3) leaves its flash kernel for the unfused math path.
char* loraqa_sdpa_unmasked(void* q, void* k, void* v, void** out) {
  LORAQA_TRY
#if LORAQA_TORCH_AT_LEAST(2, 0)
  *out = handle(at::scaled_dot_product_attention(T(q), T(k), T(v), c10::nullopt, 0.0, false));
#else
  (void)q, (void)k, (void)v, (void)out;
  return fail("scaled_dot_product_attention needs LibTorch 2.0 or later, this is " TORCH_VERSION);
#endif
  LORAQA_CATCH
}

}  // extern "C"
