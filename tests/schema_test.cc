#include "engine/schema.h"

#include <limits>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(SchemaTest, ParsesAndNamesMetrics) {
  for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    const absl::StatusOr<Metric> parsed = ParseMetric(MetricName(m));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_EQ(*ParseMetric("L2"), Metric::kL2);
  EXPECT_EQ(*ParseMetric("IP"), Metric::kInnerProduct);
  EXPECT_EQ(*ParseMetric("Cosine"), Metric::kCosine);
  EXPECT_EQ(MetricName(Metric::kInnerProduct), "ip");
  const absl::StatusOr<Metric> bad = ParseMetric("euclid");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              AllOf(HasSubstr("metric"), HasSubstr("euclid")));
  EXPECT_FALSE(ParseMetric("").ok());
}

TEST(SchemaTest, ParsesAndNamesDTypes) {
  for (DType d : {DType::kF32, DType::kBf16}) {
    const absl::StatusOr<DType> parsed = ParseDType(DTypeName(d));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, d);
  }
  EXPECT_EQ(*ParseDType("BF16"), DType::kBf16);
  const absl::StatusOr<DType> bad = ParseDType("f16");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              AllOf(HasSubstr("dtype"), HasSubstr("f16")));
}

CollectionSchema Good() {
  CollectionSchema s;
  s.name = "docs_v2-1";
  s.dim = 128;
  return s;
}

TEST(SchemaTest, AcceptsValidSchemas) {
  EXPECT_TRUE(ValidateSchema(Good()).ok());
  CollectionSchema s = Good();
  s.name = std::string(64, 'a');
  s.dim = kMaxDim;
  s.default_recall_target = 1.0;
  EXPECT_TRUE(ValidateSchema(s).ok());
  s.name = "";  // not checked
  EXPECT_TRUE(ValidateSchema(s, /*check_name=*/false).ok());
}

TEST(SchemaTest, RejectsBadNames) {
  const auto message = [](const std::string& name) {
    CollectionSchema s = Good();
    s.name = name;
    const absl::Status status = ValidateSchema(s);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    return std::string(status.message());
  };
  EXPECT_THAT(message(""), HasSubstr("name"));
  EXPECT_THAT(message(std::string(65, 'a')), HasSubstr("65"));
  EXPECT_THAT(message("_docs"), HasSubstr("start"));
  EXPECT_THAT(message("docs/v2"), AllOf(HasSubstr("docs/v2"), HasSubstr("4")));
  EXPECT_THAT(message("a b"), HasSubstr("position 1"));
}

TEST(SchemaTest, RejectsBadDimAndTarget) {
  CollectionSchema s = Good();
  s.dim = 0;
  EXPECT_THAT(ValidateSchema(s).message(),
              AllOf(HasSubstr("dim"), HasSubstr("got 0")));
  s.dim = kMaxDim + 1;
  EXPECT_THAT(ValidateSchema(s).message(), HasSubstr("16385"));
  s = Good();
  for (double target :
       {0.0, -0.1, 1.01, std::numeric_limits<double>::quiet_NaN()}) {
    s.default_recall_target = target;
    const absl::Status status = ValidateSchema(s);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << target;
    EXPECT_THAT(status.message(), HasSubstr("default_recall_target"));
  }
  s = Good();
  s.metric = static_cast<Metric>(7);
  EXPECT_THAT(ValidateSchema(s).message(), HasSubstr("metric"));
  s = Good();
  s.dtype = static_cast<DType>(9);
  EXPECT_THAT(ValidateSchema(s).message(), HasSubstr("dtype"));
}

}  // namespace
}  // namespace peakknn
