// A test fixture parametrised over every CPU ISA tier this build has and this CPU runs
// (Highway's HWY_EXPORT_AND_TEST_P idea): the tier is active during the test.
//   class MyOp : public tvops::testing::PerIsa {};
//   TEST_P(MyOp, Works) { ... }
//   TVOPS_INSTANTIATE_PER_ISA(MyOp);
#pragma once

#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include <algorithm>
#include <string>

namespace tvops::testing {

class PerIsa : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    previous_ = tvops::active_cpu_isa();
    tvops::set_cpu_isa(GetParam());
  }
  void TearDown() override { tvops::set_cpu_isa(previous_); }

 private:
  std::string previous_;
};

inline std::string isa_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  std::replace(s.begin(), s.end(), '.', '_');  // armv8.2 -> armv8_2
  return s;
}

}  // namespace tvops::testing

#define TVOPS_INSTANTIATE_PER_ISA(fixture) \
  INSTANTIATE_TEST_SUITE_P(Isa, fixture, ::testing::ValuesIn(tvops::available_cpu_isas()), \
                           tvops::testing::isa_test_name)
