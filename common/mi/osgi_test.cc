#include "common/mi/osgi.h"

#include <filesystem>
#include <fstream>

#include "common/mi/capp.h"
#include "common/mi/hl7_names.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::HasSubstr;

TEST(ManifestTest, JoinsContinuationLinesAndStopsAtTheFirstBlankLine) {
  // Wrapped at 72 bytes as the JDK's jar tool writes it: the continuation starts with a space.
  const std::string text =
      "Manifest-Version: 1.0\r\n"
      "Bundle-SymbolicName: org.example.mediator\r\n"
      "Import-Package: org.apache.synapse;version=\"[2.1,3)\",org.apache.axis2.c\r\n"
      " ontext;version=\"[1.6.1,1.7.0)\"\r\n"
      "\r\n"
      "Name: org/example/Foo.class\r\n"
      "SHA-256-Digest: abc\r\n";
  absl::StatusOr<Manifest> m = ParseManifest(text, "x.jar");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->at("Import-Package"),
            "org.apache.synapse;version=\"[2.1,3)\",org.apache.axis2.context;version=\"[1.6.1,1.7.0)\"");
  EXPECT_EQ(m->at("Bundle-SymbolicName"), "org.example.mediator");
  EXPECT_EQ(m->count("Name"), 0u);  // per-entry sections are not the main section
  // LF-only line ends read the same.
  absl::StatusOr<Manifest> lf = ParseManifest("A: 1\nB: x\n y\n", "y.jar");
  ASSERT_TRUE(lf.ok());
  EXPECT_EQ(lf->at("B"), "xy");
}

TEST(ManifestTest, BadLinesNameTheFileAndLine) {
  absl::StatusOr<Manifest> m = ParseManifest("A: 1\r\nnot a header\r\n", "dropins/x.jar");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr("dropins/x.jar:2:"));
  EXPECT_FALSE(ParseManifest(" leading continuation\r\n", "x").ok());
}

TEST(ManifestTest, ReadsTheManifestOfAJar) {
  ZipEntry e;
  e.name = "META-INF/MANIFEST.MF";
  e.data = "Manifest-Version: 1.0\r\nBundle-Version: 2.0.1\r\n\r\n";
  ZipEntry cls;
  cls.name = "a/B.class";
  cls.data = "not inflated";
  absl::StatusOr<std::string> jar = WriteZip({e, cls});
  ASSERT_TRUE(jar.ok());
  const std::string path = ::testing::TempDir() + "/osgi_test.jar";
  std::ofstream(path, std::ios::binary) << *jar;
  absl::StatusOr<Manifest> m = ReadJarManifest(path);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->at("Bundle-Version"), "2.0.1");
  absl::StatusOr<std::string> bare = WriteZip({cls});
  std::ofstream(path, std::ios::binary | std::ios::trunc) << *bare;
  EXPECT_EQ(ReadJarManifest(path).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove(path);
}

TEST(OsgiVersionTest, ComparesNumbersThenTheQualifierAsText) {
  auto v = [](const char* s) { return *ParseOsgiVersion(s); };
  EXPECT_EQ(CompareOsgiVersions(v("1"), v("1.0.0")), 0);
  EXPECT_LT(CompareOsgiVersions(v("2.1.7.wso2v182"), v("2.1.7.wso2v227")), 0);
  EXPECT_LT(CompareOsgiVersions(v("2.1.7"), v("2.1.7.wso2v1")), 0);
  EXPECT_GT(CompareOsgiVersions(v("4.0.0.wso2v20"), v("3.99")), 0);
  EXPECT_EQ(v("1.6.1.wso2v85").ToString(), "1.6.1.wso2v85");
  EXPECT_FALSE(ParseOsgiVersion("1.x").ok());
  EXPECT_FALSE(ParseOsgiVersion("").ok());
}

TEST(OsgiVersionTest, RangesAsOsgiWritesThem) {
  auto in = [](const char* range, const char* version) {
    absl::StatusOr<OsgiVersionRange> r = ParseOsgiVersionRange(range);
    EXPECT_TRUE(r.ok()) << range << ": " << r.status();
    return r.ok() && r->Contains(*ParseOsgiVersion(version));
  };
  EXPECT_TRUE(in("[2.1,3)", "2.1.7.wso2v227"));
  EXPECT_FALSE(in("[2.1,3)", "4.0.0.wso2v20"));
  EXPECT_FALSE(in("[2.1,3)", "3.0.0"));
  EXPECT_TRUE(in("[2.1,3]", "3.0.0"));
  EXPECT_FALSE(in("(2.1,3)", "2.1.0"));
  EXPECT_TRUE(in("\"[1.6.1, 1.7.0)\"", "1.6.1.wso2v85"));
  EXPECT_TRUE(in("2.0", "4.0.0"));  // a bare version is "at least"
  EXPECT_FALSE(in("2.0", "1.9"));
  EXPECT_TRUE(in("", "0.0.1"));  // no version: any
  EXPECT_FALSE(ParseOsgiVersionRange("[1.0,2.0").ok());
  EXPECT_FALSE(ParseOsgiVersionRange("[1.0;2.0)").ok());
}

TEST(ImportPackageTest, ClausesQuotedListsAndDirectives) {
  absl::StatusOr<std::vector<PackageImport>> imports = ParseImportPackage(
      "org.apache.synapse;org.apache.synapse.core;version=\"[2.1,3)\","
      "org.apache.commons.logging;resolution:=optional,"
      " org.osgi.framework ; version=1.5 ,"
      "javax.xml.stream;version=\"[1.0,2)\";resolution:=\"optional\"",
      "dropins/a.jar");
  ASSERT_TRUE(imports.ok()) << imports.status();
  ASSERT_EQ(imports->size(), 5u);
  EXPECT_EQ((*imports)[0].package, "org.apache.synapse");
  EXPECT_EQ((*imports)[1].package, "org.apache.synapse.core");
  EXPECT_EQ((*imports)[1].version, "[2.1,3)");
  EXPECT_FALSE((*imports)[1].optional);
  EXPECT_TRUE((*imports)[2].optional);
  EXPECT_EQ((*imports)[2].version, "");
  EXPECT_EQ((*imports)[3].package, "org.osgi.framework");
  EXPECT_EQ((*imports)[3].version, "1.5");
  EXPECT_TRUE((*imports)[4].optional);

  absl::StatusOr<std::vector<PackageImport>> bad =
      ParseImportPackage("org.a;version=\"[1,2\"", "dropins/b.jar");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("dropins/b.jar: Import-Package: org.a"));
}

TEST(MiExportsTest, SynapseAxis2MiAndKernelFamiliesPerVersion) {
  std::optional<ExportedPackage> s40 = MiExportedPackage("4.0.0", "org.apache.synapse.mediators");
  ASSERT_TRUE(s40.has_value());
  EXPECT_EQ(s40->version.ToString(), "2.1.7.wso2v227");
  std::optional<ExportedPackage> s42 = MiExportedPackage("4.2.0", "org.apache.synapse");
  ASSERT_TRUE(s42.has_value());
  EXPECT_EQ(s42->version.ToString(), "4.0.0.wso2v20");
  EXPECT_EQ(s42->what, "Synapse 4.0.0-wso2v20");
  EXPECT_EQ(MiExportedPackage("1.2.0", "org.apache.axis2.context")->version.ToString(),
            "1.6.1.wso2v54");
  EXPECT_EQ(MiExportedPackage("4.2.0", "org.wso2.micro.integrator.core")->version.ToString(),
            "4.2.0");
  EXPECT_FALSE(MiExportedPackage("4.2.0", "org.apache.synapsex").has_value());  // not a prefix
  EXPECT_FALSE(MiExportedPackage("4.2.0", "com.example.util").has_value());
  EXPECT_FALSE(MiExportedPackage("9.9.9", "org.apache.synapse").has_value());
}

TEST(JarNameTest, ArtifactAndVersionFromTheFileName) {
  EXPECT_EQ(ParseJarFileName("commons-lang3-3.9.jar").artifact, "commons-lang3");
  EXPECT_EQ(ParseJarFileName("commons-lang3-3.9.jar").version, "3.9");
  EXPECT_EQ(ParseJarFileName("commons-lang3_3.12.0.wso2v1.jar").version, "3.12.0.wso2v1");
  EXPECT_EQ(ParseJarFileName("mysql-connector-java-8.0.28.jar").artifact, "mysql-connector-java");
  EXPECT_EQ(ParseJarFileName("ojdbc8.jar").artifact, "ojdbc8");
  EXPECT_EQ(ParseJarFileName("ojdbc8.jar").version, "");
  EXPECT_TRUE(SameJarVersion("1.0", "1.0.0"));
  EXPECT_TRUE(SameJarVersion("2.1.7-wso2v1", "2.1.7.wso2v1"));
  EXPECT_FALSE(SameJarVersion("3.9", "3.12.0.wso2v1"));
}

TEST(Hl7NamesTest, OldCarbonPackageBecomesTheMiOne) {
  int n = -1;
  EXPECT_EQ(RewriteOldHl7ClassNames(
                "class=\"org.wso2.carbon.business.messaging.hl7.message.HL7MessageBuilder\" "
                "org.wso2.carbon.business.messaging.hl7.store.jpa.JPAStore",
                &n),
            "class=\"org.wso2.micro.integrator.business.messaging.hl7.message.HL7MessageBuilder\" "
            "org.wso2.micro.integrator.business.messaging.hl7.store.jpa.JPAStore");
  EXPECT_EQ(n, 2);
  EXPECT_EQ(RewriteOldHl7ClassNames("nothing here", &n), "nothing here");
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace mimic::common
