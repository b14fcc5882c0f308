#include "common/mi/home_paths.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::HasSubstr;

constexpr char kOld[] = "/opt/wso2mi-1.2.0";
constexpr char kNew[] = "/srv/mi/wso2mi-4.0.0";

TEST(HomePathsTest, TomlValuesUnderTheOldHomeAreRewrittenWithTheirKeys) {
  const std::string toml =
      "# keep /opt/wso2mi-1.2.0/in/comments\n"
      "[transport.vfs]\n"
      "out_dir = \"/opt/wso2mi-1.2.0/vfs/out\"   # ticket OPS-1\n"
      "home = '/opt/wso2mi-1.2.0'\n"
      "[[datasource]]\n"
      "url = \"jdbc:h2:/opt/wso2mi-1.2.0/repository/database/X;AUTO_SERVER=TRUE\"\n";
  HomePathRewrite r = RewriteHomePaths(toml, CarriedFormat::kToml, kOld, kNew);
  EXPECT_EQ(r.text,
            "# keep /opt/wso2mi-1.2.0/in/comments\n"
            "[transport.vfs]\n"
            "out_dir = \"/srv/mi/wso2mi-4.0.0/vfs/out\"   # ticket OPS-1\n"
            "home = '/srv/mi/wso2mi-4.0.0'\n"
            "[[datasource]]\n"
            "url = \"jdbc:h2:/srv/mi/wso2mi-4.0.0/repository/database/X;AUTO_SERVER=TRUE\"\n");
  ASSERT_EQ(r.findings.size(), 3u);
  EXPECT_EQ(r.findings[0].line, 3);
  EXPECT_EQ(r.findings[0].key, "transport.vfs.out_dir");
  EXPECT_EQ(r.findings[0].value, "/opt/wso2mi-1.2.0/vfs/out");
  EXPECT_TRUE(r.findings[0].rewritten);
  EXPECT_EQ(r.findings[1].key, "transport.vfs.home");
  EXPECT_EQ(r.findings[2].key, "datasource.url");
  EXPECT_EQ(r.findings[2].line, 6);
}

// Only a whole path component is the old home: a longer name is reported and left; a path that
// merely contains the old home's text further in is not the old home at all.
TEST(HomePathsTest, PrefixMatchOnlyOnAComponentBoundary) {
  const std::string props =
      "a=/opt/wso2mi-1.2.0-backup/x\n"
      "b=/mnt/opt/wso2mi-1.2.0/x\n"
      "c = file:///opt/wso2mi-1.2.0/conf/x.xml\n"
      "! /opt/wso2mi-1.2.0/commented\n";
  HomePathRewrite r = RewriteHomePaths(props, CarriedFormat::kProperties, kOld, kNew);
  EXPECT_EQ(r.text,
            "a=/opt/wso2mi-1.2.0-backup/x\n"
            "b=/mnt/opt/wso2mi-1.2.0/x\n"
            "c = file:///srv/mi/wso2mi-4.0.0/conf/x.xml\n"
            "! /opt/wso2mi-1.2.0/commented\n");
  ASSERT_EQ(r.findings.size(), 2u);
  EXPECT_EQ(r.findings[0].key, "a");
  EXPECT_FALSE(r.findings[0].rewritten);
  EXPECT_EQ(r.findings[1].key, "c");
  EXPECT_TRUE(r.findings[1].rewritten);
  EXPECT_THAT(DescribeHomePathFinding("conf/x.properties", r.findings[0], kOld, kNew),
              HasSubstr("conf/x.properties:1: a: not a path under the old MI home "
                        "/opt/wso2mi-1.2.0, left as it is (check it): /opt/wso2mi-1.2.0-backup/x"));
  EXPECT_THAT(DescribeHomePathFinding("conf/x.properties", r.findings[1], kOld, kNew),
              HasSubstr("conf/x.properties:3: c: path under the old MI home /opt/wso2mi-1.2.0 "
                        "rewritten to the target home /srv/mi/wso2mi-4.0.0: "
                        "/opt/wso2mi-1.2.0/conf/x.xml"));
}

TEST(HomePathsTest, XmlAttributesAndElementsButNotComments) {
  const std::string xml =
      "<proxy name=\"P\">\n"
      "  <!-- was /opt/wso2mi-1.2.0/old -->\n"
      "  <parameter name=\"transport.vfs.FileURI\">file:///opt/wso2mi-1.2.0/in</parameter>\n"
      "  <xslt key=\"k\" path=\"/opt/wso2mi-1.2.0/conf/x.xslt\"/>\n"
      "</proxy>\n";
  HomePathRewrite r = RewriteHomePaths(xml, CarriedFormat::kXml, kOld, kNew);
  EXPECT_THAT(r.text, HasSubstr("<!-- was /opt/wso2mi-1.2.0/old -->"));
  EXPECT_THAT(r.text, HasSubstr(">file:///srv/mi/wso2mi-4.0.0/in</parameter>"));
  EXPECT_THAT(r.text, HasSubstr("path=\"/srv/mi/wso2mi-4.0.0/conf/x.xslt\""));
  ASSERT_EQ(r.findings.size(), 2u);
  EXPECT_EQ(r.findings[0].key, "parameter");
  EXPECT_EQ(r.findings[0].line, 3);
  EXPECT_EQ(r.findings[1].key, "path");
}

TEST(HomePathsTest, NothingToDoLeavesTheTextAlone) {
  HomePathRewrite r = RewriteHomePaths("x = \"/srv/other\"\n", CarriedFormat::kToml, kOld, kNew);
  EXPECT_EQ(r.text, "x = \"/srv/other\"\n");
  EXPECT_TRUE(r.findings.empty());
  // Rewriting twice is rewriting once (the new home is not under the old one).
  HomePathRewrite once = RewriteHomePaths("p=/opt/wso2mi-1.2.0/a\n", CarriedFormat::kProperties,
                                          kOld, kNew);
  EXPECT_EQ(RewriteHomePaths(once.text, CarriedFormat::kProperties, kOld, kNew).text, once.text);
}

TEST(HomePathsTest, FormatsByName) {
  EXPECT_EQ(CarriedFormatOf("conf/deployment.toml"), CarriedFormat::kToml);
  EXPECT_EQ(CarriedFormatOf("a/secret-conf.properties"), CarriedFormat::kProperties);
  EXPECT_EQ(CarriedFormatOf("synapse-configs/default/api/A.XML"), CarriedFormat::kXml);
  EXPECT_EQ(CarriedFormatOf("dataservices/D.dbs"), CarriedFormat::kXml);
  EXPECT_EQ(CarriedFormatOf("carbonapps/a.car"), std::nullopt);
  EXPECT_EQ(CarriedFormatOf("security/wso2carbon.jks"), std::nullopt);
  EXPECT_EQ(CarriedFormatOf("a.d/noext"), std::nullopt);
}

}  // namespace
}  // namespace mimic::common
