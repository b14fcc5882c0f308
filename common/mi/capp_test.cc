// common/capp: reading, re-packing and the Data Mapper rewrite on the real sample CApp
// (shared/fixtures/mi/samples/carbonapps; those tests skip when the fixtures are absent), and
// refusal of hostile archives made here with libzip or by mimic's MI home generator.
#include "common/mi/capp.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/fixtures.h"
#include "tests/mi_home/mi_home.h"

namespace mimic::common {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// WSO2's real sample (the tests reading it skip when the fixtures are absent).
const std::string kSample = mi_home::FixturesDir() +
    "/mi/samples/carbonapps/1_1_3_synapse-configCompositeApplication_1.0.0.car";
const char kStyle1[] =
    "config_convert_soap_to_json_xsltStyleSheet_1.0.0/resources/"
    "config_convert_soap_to_json_xsltStyleSheet.xml";
const char kStyle2[] =
    "config_convert_json_to_soap_xsltStyleSheet_1.0.0/resources/"
    "config_convert_json_to_soap_xsltStyleSheet.xml";

// An entry as the hostile-archive builder writes it.
struct RawEntry {
  std::string name;
  std::string data;
  uint8_t opsys = ZIP_OPSYS_UNIX;
  uint32_t attributes = 0100644u << 16;
  bool encrypt = false;
};

// A 64 KB stored entry with a NUL byte in its sniffed head (binary by git's rule).
ZipEntry StoredBinaryEntry(const std::string& name) {
  std::string blob(64 << 10, 'b');
  blob[10] = '\0';
  ZipEntry e{name, blob};
  e.compression = kZipStore;
  return e;
}

// Changes one byte of the StoredBinaryEntry in `zip` past the sniffed head: its CRC no longer
// matches.
void DamagePastTheHead(std::string* zip) {
  const size_t at = zip->find(std::string(1, '\0') + "bbbb") + 40000;
  ASSERT_EQ((*zip)[at], 'b');
  (*zip)[at] = 'c';
}

class CappTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/capp_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return JoinPath(dir_, name); }

  void Save(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  // Writes `entries` with libzip itself (which checks none of what ReadZip checks). Returns
  // false when libzip cannot make it (an encryption method it was built without).
  bool MakeZip(const std::string& path, const std::vector<RawEntry>& entries) {
    int err = 0;
    zip_t* za = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
    if (za == nullptr) return false;
    for (const RawEntry& e : entries) {
      zip_source_t* s = zip_source_buffer(za, e.data.data(), e.data.size(), 0);
      zip_int64_t idx = zip_file_add(za, e.name.c_str(), s, ZIP_FL_ENC_GUESS);
      EXPECT_GE(idx, 0) << e.name << ": " << zip_strerror(za);
      if (idx < 0) {
        zip_source_free(s);
        zip_discard(za);
        return false;
      }
      zip_file_set_external_attributes(za, idx, 0, e.opsys, e.attributes);
      if (e.encrypt && zip_file_set_encryption(za, idx, ZIP_EM_TRAD_PKWARE, "secret") != 0 &&
          zip_file_set_encryption(za, idx, ZIP_EM_AES_256, "secret") != 0) {
        zip_discard(za);
        return false;
      }
    }
    return zip_close(za) == 0;
  }

  // ReadZip on an archive of `entries`; the status it gives.
  absl::Status ReadHostile(const std::string& name, const std::vector<RawEntry>& entries,
                           const ZipLimits& limits = {}) {
    const std::string path = Path(name);
    EXPECT_TRUE(MakeZip(path, entries));
    return ReadZip(path, limits).status();
  }

  std::string dir_;
};

TEST_F(CappTest, ReadsTheSampleCappInArchiveOrder) {
  MIMIC_SKIP_WITHOUT_FIXTURES();
  absl::StatusOr<std::vector<ZipEntry>> entries = ReadZip(kSample);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 47u);
  const ZipEntry& first = (*entries)[0];
  EXPECT_EQ(first.name, "1_1_3_Proxy_soap_to_json_using_data_mapper_1.0.0/");
  EXPECT_TRUE(first.is_dir);
  EXPECT_THAT(first.data, IsEmpty());
  EXPECT_EQ((*entries)[1].name,
            "1_1_3_Proxy_soap_to_json_using_data_mapper_1.0.0/"
            "1_1_3_Proxy_soap_to_json_using_data_mapper-1.0.0.xml");
  EXPECT_EQ((*entries)[1].data.size(), 1123u);
  EXPECT_EQ(entries->back().name, "config_convert_soap_to_json_outputSchema_1.0.0/artifact.xml");
  int stylesheets = 0;
  for (const ZipEntry& e : *entries) {
    EXPECT_EQ(e.compression, kZipDeflate) << e.name;
    EXPECT_NE(e.mtime, 0) << e.name;
    EXPECT_EQ(e.is_dir, e.name.back() == '/');
    if (IsXsltStyleSheetName(e.name)) {
      ++stylesheets;
      EXPECT_THAT(e.data, HasSubstr(kOldXsltPrefixes));
    }
    if (e.name == "artifacts.xml") {
      EXPECT_THAT(e.data, HasSubstr("carbon/application"));
    }
  }
  EXPECT_EQ(stylesheets, 2);
}

TEST_F(CappTest, MigrationChangesOnlyTheStylesheets) {
  MIMIC_SKIP_WITHOUT_FIXTURES();
  absl::StatusOr<std::vector<ZipEntry>> before = ReadZip(kSample);
  ASSERT_TRUE(before.ok()) << before.status();
  std::vector<ZipEntry> migrated = *before;
  std::vector<std::string> changed;
  EXPECT_EQ(MigrateCappEntries(&migrated, &changed), 2);
  EXPECT_THAT(changed, ElementsAre(kStyle1, kStyle2));

  absl::StatusOr<std::string> bytes = WriteZip(migrated);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const std::string out = Path("migrated.car");
  Save(out, *bytes);
  EXPECT_EQ(::system(absl::StrCat("unzip -tq '", out, "' >/dev/null").c_str()), 0);

  absl::StatusOr<std::vector<ZipEntry>> after = ReadZip(out);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), before->size());
  for (size_t i = 0; i < before->size(); ++i) {
    const ZipEntry& b = (*before)[i];
    const ZipEntry& a = (*after)[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.is_dir, b.is_dir);
    EXPECT_EQ(a.mtime, b.mtime) << a.name;
    EXPECT_EQ(a.opsys, b.opsys) << a.name;
    EXPECT_EQ(a.external_attributes, b.external_attributes) << a.name;
    EXPECT_EQ(a.compression, b.compression) << a.name;
    if (a.name == kStyle1 || a.name == kStyle2) {
      EXPECT_NE(a.data, b.data);
      EXPECT_EQ(a.data, absl::StrReplaceAll(b.data, {{kOldXsltPrefixes, kNewXsltPrefixes}}));
      EXPECT_THAT(a.data, HasSubstr(R"(exclude-result-prefixes="xs")"));
    } else {
      EXPECT_EQ(a.data, b.data) << a.name;
    }
  }
  // unzip extracts exactly the migrated content.
  EXPECT_EQ(
      ::system(
          absl::StrCat("cd '", dir_, "' && unzip -qo migrated.car '", kStyle1, "' -d x").c_str()),
      0);
  EXPECT_EQ(*ReadFile(JoinPath(dir_, std::string("x/") + kStyle1)),
            MigrateXsltStyleSheet((*before)[6].data, nullptr));

  // Idempotent: nothing left to migrate; deterministic: the same entries give the same bytes.
  std::vector<ZipEntry> again = *after;
  EXPECT_EQ(MigrateCappEntries(&again, nullptr), 0);
  EXPECT_EQ(*WriteZip(migrated), *bytes);
}

TEST_F(CappTest, RoundTripKeepsStoredEntriesModesAndUnchangedArchiveBytes) {
  std::vector<ZipEntry> entries(3);
  entries[0] = {"bin/", "", true, 3, (040755u << 16) | 0x10, 1600000000, kZipStore};
  entries[1] = {"bin/run.sh", "#!/bin/sh\necho hi\n", false, 3, 0100755u << 16, 1600000002,
                kZipStore};
  entries[2] = {"a_xsltStyleSheet.xml",
                std::string(kNewXsltPrefixes) + std::string(5000, ' '),
                false,
                0,
                0,
                1600000004,
                kZipDeflate};
  absl::StatusOr<std::string> bytes = WriteZip(entries);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<std::vector<ZipEntry>> back = ReadZipFromBytes(*bytes, "memory");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*back)[i].name, entries[i].name);
    EXPECT_EQ((*back)[i].data, entries[i].data);
    EXPECT_EQ((*back)[i].compression, entries[i].compression) << entries[i].name;
    EXPECT_EQ((*back)[i].external_attributes, entries[i].external_attributes);
    EXPECT_EQ((*back)[i].mtime, entries[i].mtime);
  }
  EXPECT_EQ((*back)[1].unix_mode(), 0755u);
  EXPECT_EQ(MigrateCappEntries(&*back, nullptr), 0);  // already migrated: untouched
  EXPECT_EQ(*WriteZip(*back), *bytes);
}

TEST(MigrateXsltStyleSheetTest, ReplacesEveryOccurrenceAndIsIdempotent) {
  const std::string old_text =
      absl::StrCat("<a ", kOldXsltPrefixes, " version=\"2.0\"/>\n<b ", kOldXsltPrefixes, "/>");
  int n = -1;
  const std::string once = MigrateXsltStyleSheet(old_text, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(once,
            "<a extension-element-prefixes=\"own notXSLTCompatible firstElementOfTheInput\" "
            "exclude-result-prefixes=\"xs\" version=\"2.0\"/>\n<b extension-element-prefixes="
            "\"own notXSLTCompatible firstElementOfTheInput\" exclude-result-prefixes=\"xs\"/>");
  EXPECT_EQ(MigrateXsltStyleSheet(once, &n), once);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(MigrateXsltStyleSheet("", &n), "");
  EXPECT_EQ(n, 0);
  EXPECT_TRUE(IsXsltStyleSheetName("x/resources/conv_xsltStyleSheet.xml"));
  EXPECT_FALSE(IsXsltStyleSheetName("x/resources/conv.dmc"));
  EXPECT_FALSE(IsXsltStyleSheetName("xsltStyleSheet.xml"));
}

TEST_F(CappTest, RefusesZipSlipNames) {
  for (const std::string name : {"../evil", "a/../../evil", "/abs", "a\\..\\..\\evil", "\\abs",
                                 "C:/Windows/evil", "a//b", "./a"}) {
    absl::Status st = ReadHostile("slip.car", {{"ok.txt", "fine"}, {name, "payload"}});
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << name << ": " << st;
    EXPECT_THAT(st.message(), HasSubstr(Path("slip.car"))) << name;
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("\"", name, "\""))) << name;
  }
}

TEST_F(CappTest, RefusesSymlinksAndSpecialFiles) {
  absl::Status st =
      ReadHostile("link.car", {{"a.txt", "x"}, {"link", "/etc/passwd", 3, 0120777u << 16}});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr("\"link\" is a symbolic link"));
  EXPECT_THAT(st.message(), HasSubstr(Path("link.car")));
  st = ReadHostile("fifo.car", {{"fifo", "", 3, 010644u << 16}});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr("special file"));
}

TEST_F(CappTest, RefusesDuplicateAndAliasedNames) {
  absl::Status st = ReadHostile("alias.car", {{"a/b.xml", "1"}, {"a\\b.xml", "2"}});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr("duplicate"));
  // Byte-identical duplicates: libzip will not write them, so rename one in the bytes.
  ASSERT_TRUE(MakeZip(Path("dup0.car"), {{"aaaa.xml", "1"}, {"bbbb.xml", "2"}}));
  std::string bytes = *ReadFile(Path("dup0.car"));
  Save(Path("dup.car"), absl::StrReplaceAll(bytes, {{"bbbb.xml", "aaaa.xml"}}));
  st = ReadZip(Path("dup.car")).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr(Path("dup.car")));
  EXPECT_THAT(st.message(), HasSubstr("\"aaaa.xml\" is a duplicate name"));
}

TEST_F(CappTest, WantContentReadsOnlyTheChosenEntries) {
  std::vector<ZipEntry> entries(3);
  entries[0] = {"keep.txt", "kept content"};
  entries[1] = {"skip.bin", std::string(3000, 'x')};
  entries[2] = {"dir/", "", true};
  absl::StatusOr<std::string> bytes = WriteZip(entries);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ZipLimits limits;
  limits.max_total_bytes = 1000;  // only what is read counts
  limits.want_content = [](const ZipEntry& e) { return e.name == "keep.txt"; };
  absl::StatusOr<std::vector<ZipEntry>> back = ReadZipFromBytes(*bytes, "memory", limits);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 3u);
  EXPECT_TRUE((*back)[0].content_read);
  EXPECT_EQ((*back)[0].data, "kept content");
  EXPECT_EQ((*back)[0].size, 12u);
  EXPECT_FALSE((*back)[1].content_read);
  EXPECT_EQ((*back)[1].data, "");
  EXPECT_EQ((*back)[1].size, 3000u);
  // Unread entries are still checked.
  EXPECT_EQ(ReadHostile("slip.car", {{"../evil", "x"}}, limits).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CappTest, SkipBinaryReadsOnlyTheHeadOfABinaryEntry) {
  // A stored entry holding a NUL byte early and, past the sniffed head, bytes that no longer
  // match its CRC: passed over as binary after its head, so the damage is never read.
  std::vector<ZipEntry> entries(3);
  entries[0] = {"a.xml", "<a>hl7://lab:1</a>"};
  entries[1] = StoredBinaryEntry("lib.bin");
  entries[2] = {"text.bin", "no nul here"};
  absl::StatusOr<std::string> bytes = WriteZip(entries);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  DamagePastTheHead(&*bytes);
  const std::string path = Path("binary.car");
  Save(path, *bytes);

  EXPECT_EQ(ReadZip(path).status().code(), absl::StatusCode::kInvalidArgument);  // CRC
  ZipLimits limits;
  limits.skip_binary = true;
  absl::StatusOr<std::vector<ZipEntry>> back = ReadZip(path, limits);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 3u);
  EXPECT_TRUE((*back)[0].content_read);
  EXPECT_FALSE((*back)[0].binary);
  EXPECT_EQ((*back)[0].data, "<a>hl7://lab:1</a>");
  EXPECT_FALSE((*back)[1].content_read);
  EXPECT_TRUE((*back)[1].binary);
  EXPECT_EQ((*back)[1].data, "");
  EXPECT_EQ((*back)[1].size, entries[1].data.size());
  EXPECT_TRUE((*back)[2].content_read);
  EXPECT_EQ((*back)[2].data, "no nul here");
  // The same from memory.
  back = ReadZipFromBytes(*bytes, "memory", limits);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE((*back)[1].binary);
}

// One read for several readers gives each exactly what its own ReadZip gives: entries,
// content and flags, or the same error, also where the readers' rules differ (a binary entry
// damaged past its head, limits only some readers hit, damage in an entry only some read).
TEST_F(CappTest, ReadZipForEachGivesEachReaderWhatItsOwnReadGives) {
  std::vector<ZipEntry> entries(5);
  entries[0] = {"a.xml", "<a>hl7://lab:1</a>"};
  entries[1] = StoredBinaryEntry("lib.bin");
  entries[2] = {"x_xsltStyleSheet.xml", std::string(kOldXsltPrefixes) + std::string(6000, 's')};
  entries[3] = {"dir/", "", true};
  entries[4] = {"big.txt", std::string(20000, 't')};
  absl::StatusOr<std::string> good = WriteZip(entries);
  ASSERT_TRUE(good.ok()) << good.status();
  Save(Path("good.car"), *good);
  std::string damaged = *good;  // lib.bin damaged past its sniffed head: a CRC error
  DamagePastTheHead(&damaged);
  Save(Path("damaged.car"), damaged);
  ASSERT_TRUE(MakeZip(Path("slip.car"), {{"a.xml", "x"}, {"../evil", "x"}}));
  Save(Path("junk.car"), "PK\x03\x04 not really a zip");
  Save(Path("datamapper.car"), *mi_home::DataMapperCapp());

  std::vector<ZipLimits> readers(6);
  readers[1] = StyleSheetEntriesOnly();
  readers[2].skip_binary = true;
  readers[2].want_content = [](const ZipEntry& e) { return !e.is_dir && e.size <= 70000; };
  readers[3].max_total_bytes = 10000;
  readers[4].want_content = [](const ZipEntry& e) { return e.name == "lib.bin"; };
  readers[4].skip_binary = true;
  readers[5].max_entries = 3;
  for (const char* name : {"good.car", "damaged.car", "slip.car", "junk.car", "datamapper.car",
                           "missing.car"}) {
    const std::string path = Path(name);
    const std::vector<absl::StatusOr<std::vector<ZipEntry>>> together =
        ReadZipForEach(path, readers);
    ASSERT_EQ(together.size(), readers.size());
    for (size_t r = 0; r < readers.size(); ++r) {
      SCOPED_TRACE(absl::StrCat(name, ", reader ", r));
      const absl::StatusOr<std::vector<ZipEntry>> alone = ReadZip(path, readers[r]);
      ASSERT_EQ(together[r].status(), alone.status());
      if (!alone.ok()) continue;
      ASSERT_EQ(together[r]->size(), alone->size());
      for (size_t i = 0; i < alone->size(); ++i) {
        const ZipEntry& a = (*alone)[i];
        const ZipEntry& t = (*together[r])[i];
        EXPECT_EQ(t.name, a.name);
        EXPECT_EQ(t.data, a.data) << a.name;
        EXPECT_EQ(t.is_dir, a.is_dir);
        EXPECT_EQ(t.opsys, a.opsys);
        EXPECT_EQ(t.external_attributes, a.external_attributes);
        EXPECT_EQ(t.mtime, a.mtime);
        EXPECT_EQ(t.compression, a.compression);
        EXPECT_EQ(t.size, a.size);
        EXPECT_EQ(t.content_read, a.content_read) << a.name;
        EXPECT_EQ(t.binary, a.binary) << a.name;
      }
    }
  }
  // The cases above do differ between readers.
  const auto damaged_reads = ReadZipForEach(Path("damaged.car"), readers);
  EXPECT_FALSE(damaged_reads[0].ok());
  EXPECT_TRUE(damaged_reads[1].ok());
  EXPECT_TRUE(damaged_reads[2].ok());
  EXPECT_TRUE((*damaged_reads[2])[1].binary);
  EXPECT_FALSE(damaged_reads[3].ok());
  EXPECT_TRUE(damaged_reads[4].ok());
  EXPECT_FALSE(damaged_reads[5].ok());
}

TEST_F(CappTest, RefusesZipBombsAndOversizedArchives) {
  absl::Status st = ReadHostile(
      "bomb.car", {{"artifacts.xml", "<artifacts/>"}, {"zeros", std::string(20 << 20, '\0')}});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr("\"zeros\""));
  EXPECT_THAT(st.message(), HasSubstr("zip bomb"));
  EXPECT_THAT(st.message(), HasSubstr(Path("bomb.car")));

  ZipLimits small;
  small.max_total_bytes = 10000;
  const std::string capp = Path("datamapper.car");
  Save(capp, *mi_home::DataMapperCapp());
  st = ReadZip(capp, small).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr("uncompressed total above 10000"));
  EXPECT_THAT(st.message(), HasSubstr(capp));
}

TEST_F(CappTest, RefusesEncryptedEntries) {
  if (!MakeZip(Path("enc.car"), {{"secret.xml", "<secret/>", 3, 0100644u << 16, true}})) {
    GTEST_SKIP() << "this libzip cannot write encrypted entries";
  }
  absl::Status st = ReadZip(Path("enc.car")).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr("\"secret.xml\" is encrypted"));
}

TEST_F(CappTest, RefusesCorruptArchives) {
  Save(Path("junk.car"), "PK\x03\x04 not really a zip");
  absl::Status st = ReadZip(Path("junk.car")).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr(Path("junk.car")));

  // A flipped byte inside compressed data: the CRC check catches it.
  std::string bytes = *mi_home::DataMapperCapp();
  const size_t at = bytes.find("artifact.xml") + 40;  // inside the first file's data
  bytes[at] = static_cast<char>(bytes[at] ^ 0x55);
  EXPECT_EQ(ReadZipFromBytes(bytes, "flipped.car").status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(ReadZip(Path("missing.car")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(WriteZip({{"a"}, {"a"}}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mimic::common
