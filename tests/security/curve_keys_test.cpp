// CURVE key files: generate, write (0600), read back, and clear errors for
// every way a key file can be wrong.
#include "security/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "tests/support/process.h"

namespace thalamus::security {
namespace {

std::string ErrorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const KeyError& e) {
    return e.what();
  }
  return "";
}

TEST(CurveKeys, GeneratedPairsRoundTripThroughTheirFiles) {
  testing::TempDir dir;
  const KeyPair keys = GenerateKeyPair();
  EXPECT_EQ(keys.public_key.size(), 40u);
  EXPECT_NE(keys.public_key, GenerateKeyPair().public_key);
  WriteKeyPair(keys, dir.path() + "/router");
  const KeyPair read = ReadKeyPair(dir.path() + "/router.key");
  EXPECT_EQ(read.public_key, keys.public_key);
  EXPECT_EQ(read.secret_key, keys.secret_key);
  EXPECT_EQ(ReadPublicKey(dir.path() + "/router.pub"), keys.public_key);
  EXPECT_EQ(testing::ReadFile(dir.path() + "/router.pub").find(keys.secret_key), std::string::npos);
  struct stat info {};
  ASSERT_EQ(stat((dir.path() + "/router.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  // Never overwritten.
  EXPECT_NE(ErrorOf([&] { WriteKeyPair(GenerateKeyPair(), dir.path() + "/router"); }).find("cannot create"),
            std::string::npos);
  EXPECT_EQ(ReadKeyPair(dir.path() + "/router.key").public_key, keys.public_key);
}

TEST(CurveKeys, BadFilesAreErrorsNamingFileAndLine) {
  testing::TempDir dir;
  EXPECT_NE(ErrorOf([&] { ReadKeyPair(dir.path() + "/missing.key"); }).find("missing.key: cannot read"),
            std::string::npos);
  const std::string short_key = dir.Write("short.pub", "# comment\npublic-key = \"abc\"\n");
  EXPECT_NE(ErrorOf([&] { ReadPublicKey(short_key); }).find("short.pub:2: public-key is not a 40-character Z85 key"),
            std::string::npos);
  const std::string no_quotes = dir.Write("bare.pub", "public-key = 0123456789012345678901234567890123456789\n");
  EXPECT_NE(ErrorOf([&] { ReadPublicKey(no_quotes); }).find("bare.pub:1: expected name = \"Z85 key\""),
            std::string::npos);
  const KeyPair a = GenerateKeyPair(), b = GenerateKeyPair();
  const std::string mixed =
      dir.Write("mixed.key", "public-key = \"" + a.public_key + "\"\nsecret-key = \"" + b.secret_key + "\"\n");
  EXPECT_NE(ErrorOf([&] { ReadKeyPair(mixed); }).find("does not belong to the secret key"), std::string::npos);
  const std::string public_only = dir.Write("only.key", "public-key = \"" + a.public_key + "\"\n");
  EXPECT_NE(ErrorOf([&] { ReadKeyPair(public_only); }).find("no secret-key"), std::string::npos);
}

TEST(CurveKeys, TheAuthorizedFolderIsEveryPubFile) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/authorized");
  const KeyPair a = GenerateKeyPair(), b = GenerateKeyPair();
  WriteKeyPair(a, dir.path() + "/authorized/a");
  WriteKeyPair(b, dir.path() + "/authorized/b");
  std::filesystem::remove(dir.path() + "/authorized/b.key");
  std::filesystem::remove(dir.path() + "/authorized/a.key");
  dir.Write("authorized/notes.txt", "not a key");
  std::vector<std::string> keys = ReadPublicKeys(dir.path() + "/authorized");
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> expected = {a.public_key, b.public_key};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(keys, expected);
  EXPECT_NE(ErrorOf([&] { ReadPublicKeys(dir.path() + "/nowhere"); }).find("cannot read the authorized keys folder"),
            std::string::npos);
}

}  // namespace
}  // namespace thalamus::security
