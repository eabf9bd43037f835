// Build information, CPU feature detection and ISA dispatch, variant
// recommendation and device checks, against independent sources: the kernel's
// /proc/cpuinfo, and the ISA requirements of cmake/variants.json restated here.
#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Flag = bool tvops::CpuFeatures::*;
using tvops::CpuFeatures;

// The ISA matrix (cmake/variants.json): preference order, host architecture and
// the CPU features each ISA needs.
struct IsaSpec {
  const char* name;
  const char* host;
  std::vector<Flag> needs;
};
const std::vector<IsaSpec>& isa_specs() {
  static const std::vector<IsaSpec> specs = {
      {"avx512bf16", "x86_64",  // its tier inherits the vnni kernels (parent avx512vnni)
       {&CpuFeatures::avx2, &CpuFeatures::fma, &CpuFeatures::f16c, &CpuFeatures::avx512f, &CpuFeatures::avx512dq,
        &CpuFeatures::avx512vl, &CpuFeatures::avx512bw, &CpuFeatures::avx512vnni, &CpuFeatures::avx512bf16}},
      {"avx512vnni", "x86_64",
       {&CpuFeatures::avx2, &CpuFeatures::fma, &CpuFeatures::f16c, &CpuFeatures::avx512f, &CpuFeatures::avx512dq,
        &CpuFeatures::avx512vl, &CpuFeatures::avx512bw, &CpuFeatures::avx512vnni}},
      {"avx512", "x86_64",
       {&CpuFeatures::avx2, &CpuFeatures::fma, &CpuFeatures::f16c, &CpuFeatures::avx512f, &CpuFeatures::avx512dq,
        &CpuFeatures::avx512vl, &CpuFeatures::avx512bw}},
      {"avx2", "x86_64", {&CpuFeatures::avx2, &CpuFeatures::fma, &CpuFeatures::f16c}},
      {"armv9", "aarch64", {&CpuFeatures::asimd, &CpuFeatures::asimdhp, &CpuFeatures::asimddp, &CpuFeatures::sve2}},
      {"armv8.2", "aarch64", {&CpuFeatures::asimd, &CpuFeatures::asimdhp, &CpuFeatures::asimddp}},
  };
  return specs;
}

bool meets(const IsaSpec& spec, const CpuFeatures& f) {
  return std::all_of(spec.needs.begin(), spec.needs.end(), [&](Flag flag) { return f.*flag; });
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

const IsaSpec* find_spec(const std::string& name) {
  for (const IsaSpec& s : isa_specs())
    if (name == s.name) return &s;
  return nullptr;
}

#if defined(__x86_64__)
const char* kCompiledArch = "x86_64";
#elif defined(__aarch64__)
const char* kCompiledArch = "aarch64";
#else
const char* kCompiledArch = "unknown";
#endif

// The first "key : value" of each key in /proc/cpuinfo (empty if unreadable).
std::map<std::string, std::string> read_cpuinfo() {
  std::map<std::string, std::string> fields;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  auto trim = [](std::string s) {
    const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    fields.emplace(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  return fields;
}

std::set<std::string> words(const std::string& s) {
  std::istringstream in(s);
  return {std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
}

// Restores the active ISA tier a test changes.
class IsaGuard {
 public:
  IsaGuard() : saved_(tvops::active_cpu_isa()) {}
  ~IsaGuard() { tvops::set_cpu_isa(saved_); }

 private:
  std::string saved_;
};

// ------------------------------------------------------------ build_info ----

TEST(BuildInfo, FieldsAreConsistent) {
  const tvops::BuildInfo& b = tvops::build_info();
  EXPECT_EQ(b.version, TVOPS_VERSION);  // the header this test compiled against
  EXPECT_FALSE(b.variant.empty());
  EXPECT_TRUE(b.host_arch == "x86_64" || b.host_arch == "aarch64") << b.host_arch;
  EXPECT_EQ(b.host_arch, kCompiledArch);
  EXPECT_FALSE(b.compiler.empty());
  EXPECT_FALSE(b.build_type.empty());

  ASSERT_FALSE(b.cpu_isas.empty());
  EXPECT_EQ(std::set<std::string>(b.cpu_isas.begin(), b.cpu_isas.end()).size(), b.cpu_isas.size())
      << "duplicate ISA tiers";
  for (const std::string& isa : b.cpu_isas) {
    const IsaSpec* spec = find_spec(isa);
    ASSERT_NE(spec, nullptr) << "unknown ISA tier " << isa;
    EXPECT_EQ(spec->host, b.host_arch) << isa << " compiled for " << b.host_arch;
  }

  // CUDA: targets and toolkit version come together.
  EXPECT_EQ(b.cuda_archs.empty(), b.cuda_version.empty()) << "cuda_version '" << b.cuda_version << "'";
  for (int arch : b.cuda_archs) EXPECT_GE(arch, 50);
  if (!b.cuda_version.empty()) {
    EXPECT_TRUE(std::regex_match(b.cuda_version, std::regex(R"(\d+\.\d+)"))) << b.cuda_version;
  }
}

TEST(BuildInfo, ReturnsTheSameObjectEveryTime) { EXPECT_EQ(&tvops::build_info(), &tvops::build_info()); }

// ---------------------------------------------------------- cpu_features ----

TEST(CpuFeatures, ArchitectureMatchesTheBuild) {
  const CpuFeatures& f = tvops::cpu_features();
  EXPECT_EQ(f.arch, kCompiledArch);
  EXPECT_GE(f.logical_cores, 1);
}

#if defined(__x86_64__)
TEST(CpuFeatures, MatchKernelFlags) {
  auto info = read_cpuinfo();
  if (!info.count("flags")) GTEST_SKIP() << "/proc/cpuinfo has no flags line";
  const std::set<std::string> flags = words(info["flags"]);
  const CpuFeatures& f = tvops::cpu_features();
  // The kernel lists a feature only when the CPU has it and the OS enables its state.
  const std::vector<std::pair<const char*, bool>> checks = {
      {"avx2", f.avx2},         {"fma", f.fma},
      {"f16c", f.f16c},         {"avx512f", f.avx512f},
      {"avx512dq", f.avx512dq}, {"avx512vl", f.avx512vl},
      {"avx512bw", f.avx512bw}, {"avx512_bf16", f.avx512bf16},
      {"avx512_vnni", f.avx512vnni},
  };
  for (const auto& [name, detected] : checks)
    EXPECT_EQ(detected, flags.count(name) == 1) << "feature " << name;
  EXPECT_FALSE(f.asimd || f.asimddp || f.asimdhp || f.sve || f.sve2) << "Arm features on x86";
}

TEST(CpuFeatures, ModelIsTheKernelsModelName) {
  auto info = read_cpuinfo();
  const CpuFeatures& f = tvops::cpu_features();
  if (!info.count("model name") || f.model.empty()) GTEST_SKIP() << "no brand string";
  std::string model = f.model;
  model.erase(model.find_last_not_of(' ') + 1);
  EXPECT_EQ(model, info["model name"]);
}
#endif

#if defined(__aarch64__)
TEST(CpuFeatures, MatchKernelFeatures) {
  auto info = read_cpuinfo();
  // qemu-user shows the build host's /proc/cpuinfo, which has no Features line.
  if (!info.count("Features")) GTEST_SKIP() << "/proc/cpuinfo has no Features line";
  const std::set<std::string> flags = words(info["Features"]);
  const CpuFeatures& f = tvops::cpu_features();
  const std::vector<std::pair<const char*, bool>> checks = {
      {"asimd", f.asimd}, {"asimdhp", f.asimdhp}, {"asimddp", f.asimddp}, {"sve", f.sve}, {"sve2", f.sve2},
  };
  for (const auto& [name, detected] : checks)
    EXPECT_EQ(detected, flags.count(name) == 1) << "feature " << name;
  EXPECT_FALSE(f.avx2 || f.avx512f) << "x86 features on Arm";
}
#endif

// ------------------------------------------------- cpu_supports / best ISA ----

// Every combination of the features of one architecture.
std::vector<CpuFeatures> all_combinations(const std::vector<Flag>& flags) {
  std::vector<CpuFeatures> out;
  for (unsigned mask = 0; mask < (1u << flags.size()); ++mask) {
    CpuFeatures f;
    for (std::size_t i = 0; i < flags.size(); ++i) f.*flags[i] = (mask >> i) & 1;
    out.push_back(f);
  }
  return out;
}

std::vector<CpuFeatures> synthetic_cpus() {
  auto x86 = all_combinations({&CpuFeatures::avx2, &CpuFeatures::fma, &CpuFeatures::f16c, &CpuFeatures::avx512f,
                               &CpuFeatures::avx512dq, &CpuFeatures::avx512vl, &CpuFeatures::avx512bw,
                               &CpuFeatures::avx512bf16, &CpuFeatures::avx512vnni});
  auto arm = all_combinations({&CpuFeatures::asimd, &CpuFeatures::asimdhp, &CpuFeatures::asimddp, &CpuFeatures::sve,
                               &CpuFeatures::sve2});
  x86.insert(x86.end(), arm.begin(), arm.end());
  return x86;
}

std::string describe(const CpuFeatures& f) {
  std::ostringstream os;
  os << "avx2=" << f.avx2 << " fma=" << f.fma << " f16c=" << f.f16c << " avx512f=" << f.avx512f
     << " dq=" << f.avx512dq << " vl=" << f.avx512vl << " bw=" << f.avx512bw << " bf16=" << f.avx512bf16
     << " vnni=" << f.avx512vnni << " asimd=" << f.asimd << " asimdhp=" << f.asimdhp << " asimddp=" << f.asimddp
     << " sve=" << f.sve << " sve2=" << f.sve2;
  return os.str();
}

TEST(CpuSupports, MatchesTheVariantMatrixForEveryFeatureCombination) {
  for (const CpuFeatures& f : synthetic_cpus()) {
    for (const IsaSpec& spec : isa_specs())
      ASSERT_EQ(tvops::cpu_supports(spec.name, f), meets(spec, f)) << spec.name << " on " << describe(f);
    ASSERT_FALSE(tvops::cpu_supports("bogus", f));
    ASSERT_FALSE(tvops::cpu_supports("", f));
  }
}

TEST(CpuSupports, WiderTiersImplyNarrowerOnes) {
  std::vector<CpuFeatures> cpus = synthetic_cpus();
  cpus.push_back(tvops::cpu_features());
  for (const CpuFeatures& f : cpus) {
    auto s = [&](const char* isa) { return tvops::cpu_supports(isa, f); };
    ASSERT_TRUE(!s("avx512bf16") || s("avx512vnni")) << describe(f);
    ASSERT_TRUE(!s("avx512vnni") || s("avx512")) << describe(f);
    ASSERT_TRUE(!s("avx512") || s("avx2")) << describe(f);
    ASSERT_TRUE(!s("armv9") || s("armv8.2")) << describe(f);
  }
}

TEST(CpuSupports, BestIsaIsTheFirstSupportedInPreferenceOrder) {
  std::vector<CpuFeatures> cpus = synthetic_cpus();
  cpus.push_back(tvops::cpu_features());
  for (const CpuFeatures& f : cpus) {
    std::string expected;
    for (const IsaSpec& spec : isa_specs())  // listed in preference order
      if (meets(spec, f)) {
        expected = spec.name;
        break;
      }
    ASSERT_EQ(tvops::best_cpu_isa(f), expected) << describe(f);
  }
}

TEST(CpuSupports, ThisMachine) {
  const std::string best = tvops::best_cpu_isa();
  EXPECT_EQ(best, tvops::best_cpu_isa(tvops::cpu_features()));
  if (!best.empty()) {
    EXPECT_TRUE(tvops::cpu_supports(best));
    EXPECT_EQ(find_spec(best)->host, std::string(kCompiledArch));
  }
}

// ------------------------------------------------------------ ISA dispatch ----

TEST(IsaDispatch, AvailableIsasAreTheCompiledOnesThisCpuRuns) {
  const std::vector<std::string> compiled = tvops::build_info().cpu_isas;
  const std::vector<std::string> available = tvops::available_cpu_isas();
  for (const std::string& isa : available) {
    EXPECT_TRUE(contains(compiled, isa)) << isa << " is available but not compiled";
    EXPECT_TRUE(tvops::cpu_supports(isa)) << isa << " is available but the CPU lacks it";
  }
  for (const std::string& isa : compiled) {
    if (tvops::cpu_supports(isa)) {
      EXPECT_TRUE(contains(available, isa)) << isa << " is runnable but not available";
    }
  }
}

TEST(IsaDispatch, CompatibilityCheckPassesWhenATierRuns) {
  if (tvops::available_cpu_isas().empty()) {
    EXPECT_THROW(tvops::check_cpu_compatibility(), tvops::Error);
  } else {
    EXPECT_NO_THROW(tvops::check_cpu_compatibility());
  }
}

TEST(IsaDispatch, ActiveIsaIsAnAvailableOne) {
  EXPECT_TRUE(contains(tvops::available_cpu_isas(), tvops::active_cpu_isa())) << tvops::active_cpu_isa();
}

TEST(IsaDispatch, SetCpuIsaSwitchesTheActiveTier) {
  IsaGuard guard;
  const std::vector<std::string> available = tvops::available_cpu_isas();
  ASSERT_FALSE(available.empty());
  for (int pass = 0; pass < 2; ++pass)  // forwards, then backwards: every switch, not just from the start
    for (std::size_t i = 0; i < available.size(); ++i) {
      const std::string& isa = pass == 0 ? available[i] : available[available.size() - 1 - i];
      tvops::set_cpu_isa(isa);
      EXPECT_EQ(tvops::active_cpu_isa(), isa);
    }
}

TEST(IsaDispatch, UnknownIsaThrowsListingTheCompiledTiers) {
  IsaGuard guard;
  const std::string before = tvops::active_cpu_isa();
  try {
    tvops::set_cpu_isa("bogus");
    FAIL() << "set_cpu_isa(\"bogus\") did not throw";
  } catch (const tvops::Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), tvops::ErrorKind::Value) << msg;
    EXPECT_NE(msg.find("bogus"), std::string::npos) << msg;
    for (const std::string& isa : tvops::build_info().cpu_isas)
      EXPECT_NE(msg.find(isa), std::string::npos) << "message does not name " << isa << ": " << msg;
  }
  EXPECT_EQ(tvops::active_cpu_isa(), before);
}

TEST(IsaDispatch, IsasOfTheMatrixNotCompiledOrNotRunnableAreRefused) {
  IsaGuard guard;
  const std::string before = tvops::active_cpu_isa();
  const std::vector<std::string>& compiled = tvops::build_info().cpu_isas;
  for (const IsaSpec& spec : isa_specs()) {
    if (contains(compiled, spec.name) && tvops::cpu_supports(spec.name)) continue;
    const tvops::ErrorKind want = contains(compiled, spec.name) ? tvops::ErrorKind::Unsupported
                                                                : tvops::ErrorKind::Value;
    try {
      tvops::set_cpu_isa(spec.name);
      ADD_FAILURE() << "set_cpu_isa(" << spec.name << ") did not throw";
    } catch (const tvops::Error& e) {
      EXPECT_EQ(e.kind(), want) << spec.name << ": " << e.what();
    }
    EXPECT_EQ(tvops::active_cpu_isa(), before);
  }
}

// ------------------------------------------------ variants and CUDA devices ----

TEST(Variant, RecommendedVariantNamesArchAndBestIsa) {
  std::string reason;
  const std::string v = tvops::recommended_variant(&reason);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(v, m, std::regex(R"((cpu|sm\d+)-(.+))"))) << v;
  const std::string best = tvops::best_cpu_isa();
  ASSERT_FALSE(best.empty()) << "this CPU runs no ISA of the matrix";
  EXPECT_EQ(m[2].str(), best);
  EXPECT_FALSE(reason.empty());
  EXPECT_NE(reason.find(best), std::string::npos) << reason;
  EXPECT_EQ(tvops::recommended_variant(), v);  // the reason is optional
  if (tvops::build_info().cuda_archs.empty()) {
    EXPECT_EQ(m[1].str(), "cpu") << "CPU-only build";
  }
}

bool nvidia_gpu_present() {
  for (const char* dev : {"/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg"})
    if (access(dev, F_OK) == 0) return true;
  return false;
}

TEST(Variant, CheckCudaDeviceThrowsWithoutAGpu) {
  if (nvidia_gpu_present()) GTEST_SKIP() << "an NVIDIA GPU is present";
  try {
    tvops::check_cuda_device(0);
    FAIL() << "check_cuda_device(0) did not throw on a machine without a GPU";
  } catch (const tvops::Error& e) {
    EXPECT_TRUE(e.kind() == tvops::ErrorKind::Device || e.kind() == tvops::ErrorKind::Unsupported) << e.what();
  }
  // And again: the first failure must leave no state that turns the second into a crash.
  EXPECT_THROW(tvops::check_cuda_device(0), tvops::Error);
}

TEST(Variant, CudaTensorsWithoutAGpuThrowInsteadOfCrashing) {
  if (nvidia_gpu_present()) GTEST_SKIP() << "an NVIDIA GPU is present";
  const tvops::Device cuda0{tvops::DeviceType::CUDA, 0};
  EXPECT_THROW(tvops::Tensor::empty({4}, tvops::DType::Float32, cuda0), tvops::Error);
  // Views of CUDA memory need no GPU to exist; the ops that use them must refuse cleanly.
  auto boxes = tvops::Tensor::from_blob(nullptr, {3, 4}, {}, tvops::DType::Float32, cuda0);
  auto scores = tvops::Tensor::from_blob(nullptr, {3}, {}, tvops::DType::Float32, cuda0);
  EXPECT_THROW(tvops::nms(boxes, scores, 0.5), tvops::Error);
}

TEST(Variant, CheckCudaDeviceRejectsInvalidOrdinals) {
  // No machine has device -1 or 4096, GPU or not.
  EXPECT_THROW(tvops::check_cuda_device(-1), tvops::Error);
  EXPECT_THROW(tvops::check_cuda_device(4096), tvops::Error);
}

}  // namespace
