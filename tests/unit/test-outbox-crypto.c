/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "keyhold-contract.h"

#include <sodium.h>

#include "outbox/outbox-crypto.h"

#define ITEM_ID "0b6f6e4e-9a43-4f0e-a8f5-6f7f0e3c1d2a"
#define OTHER_ID "7d1c2a9e-5b44-4a51-9a59-2f0a5b8f9c11"
#define PLAINTEXT "POST body: {\"note\": \"MARKER-7f3e\"}"

/* Two rows as the store keeps them: the clear columns, and a sealed URL
 * (its bytes only matter as what the other parts are bound to). */
static KeyholdOutboxItem *item;
static KeyholdOutboxItem *other;

static KeyholdOutboxItem *
new_item (const char *id)
{
  KeyholdOutboxItem *row = g_new0 (KeyholdOutboxItem, 1);

  row->id = g_strdup (id);
  row->owner = g_strdup ("/usr/bin/notes");
  row->account = g_strdup ("work");
  row->queue = g_strdup ("default");
  row->subject = g_strdup ("user-alice-0001");
  row->method = g_strdup ("POST");
  row->idempotency_key = g_strdup ("5d0c3f57-46d5-4a55-8f58-d33d4e0b8d61");
  row->sealed_url = g_bytes_new_static ("sealed url of the row", 21);
  return row;
}

/* Only the fields new_item () sets; the store's free function is not
 * linked in. */
static void
free_item (KeyholdOutboxItem *row)
{
  g_free (row->id);
  g_free (row->owner);
  g_free (row->account);
  g_free (row->queue);
  g_free (row->subject);
  g_free (row->method);
  g_free (row->idempotency_key);
  g_bytes_unref (row->sealed_url);
  g_free (row);
}

static void
setup (void)
{
  item = new_item (ITEM_ID);
  other = new_item (OTHER_ID);
}

static void
teardown (void)
{
  g_clear_pointer (&item, free_item);
  g_clear_pointer (&other, free_item);
}

static KeyholdSecret *
new_key (void)
{
  return keyhold_secret_new_random (KEYHOLD_OUTBOX_KEY_BYTES);
}

static GBytes *
plaintext (void)
{
  return g_bytes_new_static (PLAINTEXT, strlen (PLAINTEXT));
}

static GBytes *
flip_byte (GBytes *bytes, gsize index)
{
  gsize length;
  guint8 *copy = g_bytes_unref_to_data (g_bytes_ref (bytes), &length);

  ck_assert_uint_lt (index, length);
  copy[index] ^= 0x01;
  return g_bytes_new_take (copy, length);
}

START_TEST (test_round_trip)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened
      = keyhold_outbox_crypto_open (key, item, KEYHOLD_OUTBOX_PART_REQUEST, sealed, &error);

  ck_assert_msg (opened != NULL, "%s", error ? error->message : "");
  ck_assert (g_bytes_equal (opened, message));
}
END_TEST

START_TEST (test_empty_message_round_trip)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_URL, empty);
  g_autoptr (GBytes) opened
      = keyhold_outbox_crypto_open (key, item, KEYHOLD_OUTBOX_PART_URL, sealed, NULL);

  ck_assert_ptr_nonnull (opened);
  ck_assert_uint_eq (g_bytes_get_size (opened), 0);
}
END_TEST

START_TEST (test_ciphertext_hides_plaintext)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);
  gsize length;
  const char *data = g_bytes_get_data (sealed, &length);

  ck_assert_ptr_null (memmem (data, length, "MARKER", strlen ("MARKER")));
  /* Nonce and tag come on top of the message. */
  ck_assert_uint_eq (length, strlen (PLAINTEXT) + 24 + 16);
}
END_TEST

START_TEST (test_nonce_is_fresh_every_time)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) first
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);
  g_autoptr (GBytes) second
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);

  ck_assert (!g_bytes_equal (first, second));
  ck_assert_int_ne (memcmp (g_bytes_get_data (first, NULL), g_bytes_get_data (second, NULL), 24),
                    0);
}
END_TEST

static void
assert_open_fails (const KeyholdSecret *key,
                   const KeyholdOutboxItem *row,
                   KeyholdOutboxPart part,
                   GBytes *sealed)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened = keyhold_outbox_crypto_open (key, row, part, sealed, &error);

  ck_assert_ptr_null (opened);
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE));
  ck_assert_ptr_null (strstr (error->message, "MARKER"));
}

/* The associated data binds a blob to its row and column. */
START_TEST (test_blob_moved_to_other_item_fails)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);

  assert_open_fails (key, other, KEYHOLD_OUTBOX_PART_REQUEST, sealed);
}
END_TEST

START_TEST (test_blob_moved_to_other_part_fails)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);

  assert_open_fails (key, item, KEYHOLD_OUTBOX_PART_RESPONSE, sealed);
}
END_TEST

START_TEST (test_other_key_fails)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (KeyholdSecret) other_key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);

  assert_open_fails (other_key, item, KEYHOLD_OUTBOX_PART_REQUEST, sealed);
}
END_TEST

START_TEST (test_tampering_fails)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);
  gsize positions[] = { 0, 23, 24, g_bytes_get_size (sealed) - 1 };

  for (gsize i = 0; i < G_N_ELEMENTS (positions); i++)
    {
      g_autoptr (GBytes) altered = flip_byte (sealed, positions[i]);

      assert_open_fails (key, item, KEYHOLD_OUTBOX_PART_REQUEST, altered);
    }
}
END_TEST

START_TEST (test_truncated_blob_fails)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);
  gsize lengths[] = { 0, 10, 39, g_bytes_get_size (sealed) - 1 };

  for (gsize i = 0; i < G_N_ELEMENTS (lengths); i++)
    {
      g_autoptr (GBytes) truncated = g_bytes_new_from_bytes (sealed, 0, lengths[i]);

      assert_open_fails (key, item, KEYHOLD_OUTBOX_PART_REQUEST, truncated);
    }
}
END_TEST

/* Swapping a clear column between rows, or a blob with its columns, is
 * detected: every column the row keeps in the clear is bound. */
START_TEST (test_clear_column_changed_fails)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed_url
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_URL, message);
  g_autoptr (GBytes) sealed_request
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);
  g_autoptr (GBytes) sealed_response
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_RESPONSE, message);
  const gsize columns[] = {
    G_STRUCT_OFFSET (KeyholdOutboxItem, owner),
    G_STRUCT_OFFSET (KeyholdOutboxItem, account),
    G_STRUCT_OFFSET (KeyholdOutboxItem, queue),
    G_STRUCT_OFFSET (KeyholdOutboxItem, subject),
    G_STRUCT_OFFSET (KeyholdOutboxItem, method),
    G_STRUCT_OFFSET (KeyholdOutboxItem, idempotency_key),
  };
  for (gsize i = 0; i < G_N_ELEMENTS (columns); i++)
    {
      g_autoptr (GBytes) opened = NULL;
      char **column;

      /* @other is @item but for its id; with @item's id and one column of
       * another row, nothing opens. */
      g_free (other->id);
      other->id = g_strdup (ITEM_ID);
      opened = keyhold_outbox_crypto_open (key, other, KEYHOLD_OUTBOX_PART_URL, sealed_url, NULL);
      ck_assert_ptr_nonnull (opened);

      column = G_STRUCT_MEMBER_P (other, columns[i]);
      g_free (*column);
      *column = g_strdup ("another row's value");
      assert_open_fails (key, other, KEYHOLD_OUTBOX_PART_URL, sealed_url);
      assert_open_fails (key, other, KEYHOLD_OUTBOX_PART_REQUEST, sealed_request);
      assert_open_fails (key, other, KEYHOLD_OUTBOX_PART_RESPONSE, sealed_response);
      teardown ();
      setup ();
    }
}
END_TEST

/* The request and the response belong to the row's URL. */
START_TEST (test_request_with_other_url_fails)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed
      = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_REQUEST, message);

  g_bytes_unref (item->sealed_url);
  item->sealed_url = keyhold_outbox_crypto_seal (key, item, KEYHOLD_OUTBOX_PART_URL, message);
  assert_open_fails (key, item, KEYHOLD_OUTBOX_PART_REQUEST, sealed);
}
END_TEST

/* Format 1 associated data, as databases before format 2 hold it:
 * "ITEM-ID\0PART", spelled out independently of outbox-crypto.c. */
static GBytes *
seal_format_1 (const KeyholdSecret *key, const char *id, const char *part, GBytes *message)
{
  g_autofree char *ad = g_strconcat (id, "|", part, NULL);
  gsize message_length, ad_length = strlen (ad);
  const guint8 *data = g_bytes_get_data (message, &message_length);
  guint8 *sealed = g_malloc (24 + message_length + 16);
  unsigned long long length;

  ad[strlen (id)] = '\0';
  randombytes_buf (sealed, 24);
  crypto_aead_xchacha20poly1305_ietf_encrypt (sealed + 24, &length, data, message_length,
                                              (const guint8 *) ad, ad_length, NULL, sealed,
                                              (const guint8 *) keyhold_secret_get (key));
  return g_bytes_new_take (sealed, 24 + length);
}

/* Rows queued before the upgrade still open, and only in their own row
 * and column. */
START_TEST (test_format_1_still_opens)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (GBytes) message = plaintext ();
  g_autoptr (GBytes) sealed = seal_format_1 (key, ITEM_ID, "request", message);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened
      = keyhold_outbox_crypto_open (key, item, KEYHOLD_OUTBOX_PART_REQUEST, sealed, &error);

  ck_assert_msg (opened != NULL, "%s", error ? error->message : "");
  ck_assert (g_bytes_equal (opened, message));
  assert_open_fails (key, other, KEYHOLD_OUTBOX_PART_REQUEST, sealed);
  assert_open_fails (key, item, KEYHOLD_OUTBOX_PART_RESPONSE, sealed);
}
END_TEST

START_TEST (test_fingerprint_identifies_key)
{
  g_autoptr (KeyholdSecret) key = new_key ();
  g_autoptr (KeyholdSecret) same
      = keyhold_secret_new (keyhold_secret_get (key), keyhold_secret_get_length (key));
  g_autoptr (KeyholdSecret) other_key = new_key ();
  g_autoptr (GBytes) fingerprint = keyhold_outbox_crypto_fingerprint (key);
  g_autoptr (GBytes) same_fingerprint = keyhold_outbox_crypto_fingerprint (same);
  g_autoptr (GBytes) other_fingerprint = keyhold_outbox_crypto_fingerprint (other_key);

  ck_assert (g_bytes_equal (fingerprint, same_fingerprint));
  ck_assert (!g_bytes_equal (fingerprint, other_fingerprint));
  /* A hash, not the key. */
  ck_assert_ptr_null (memmem (g_bytes_get_data (fingerprint, NULL), g_bytes_get_size (fingerprint),
                              keyhold_secret_get (key), 8));
}
END_TEST

static Suite *
outbox_crypto_suite (void)
{
  Suite *suite = suite_create ("outbox-crypto");
  TCase *seal = tcase_create ("seal");

  tcase_add_checked_fixture (seal, setup, teardown);

  tcase_add_test (seal, test_round_trip);
  tcase_add_test (seal, test_empty_message_round_trip);
  tcase_add_test (seal, test_ciphertext_hides_plaintext);
  tcase_add_test (seal, test_nonce_is_fresh_every_time);
  tcase_add_test (seal, test_blob_moved_to_other_item_fails);
  tcase_add_test (seal, test_blob_moved_to_other_part_fails);
  tcase_add_test (seal, test_other_key_fails);
  tcase_add_test (seal, test_tampering_fails);
  tcase_add_test (seal, test_truncated_blob_fails);
  tcase_add_test (seal, test_clear_column_changed_fails);
  tcase_add_test (seal, test_request_with_other_url_fails);
  tcase_add_test (seal, test_format_1_still_opens);
  tcase_add_test (seal, test_fingerprint_identifies_key);
  suite_add_tcase (suite, seal);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (outbox_crypto_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
