/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "keyhold-contract.h"

#include "base/url-policy.h"

/* RFC 1035 §2.3.4 */
#define MAX_HOST_LENGTH 253
#define MAX_LABEL_LENGTH 63

/* An absolute http(s) URL that passed the common rules. */
typedef struct
{
  GUri *uri;
  /* Lower-case ASCII; an IPv6 address in canonical form, without brackets. */
  char *host;
  gboolean host_is_loopback;
} WebUrl;

static void
web_url_clear (WebUrl *url)
{
  g_clear_pointer (&url->uri, g_uri_unref);
  g_clear_pointer (&url->host, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (WebUrl, web_url_clear)

static gboolean
set_invalid (GError **error, const char *message)
{
  g_set_error_literal (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT, message);
  return FALSE;
}

static gboolean
is_label_char (char c)
{
  /* "_" is not a hostname character, but it occurs in real DNS names. */
  return g_ascii_isalnum (c) || c == '-' || c == '_';
}

/* Only letters, digits, "-" and "_" in non-empty labels. Anything else in a
 * host ("a b", "x\\y", "a@b", a trailing dot) is where URL parsers disagree
 * about which host is meant, so it is refused rather than passed on. */
static gboolean
is_dns_name (const char *host)
{
  g_auto (GStrv) labels = NULL;

  if (strlen (host) > MAX_HOST_LENGTH)
    return FALSE;
  labels = g_strsplit (host, ".", -1);
  for (guint i = 0; labels[i] != NULL; i++)
    {
      gsize length = strlen (labels[i]);

      if (length == 0 || length > MAX_LABEL_LENGTH)
        return FALSE;
      for (gsize j = 0; j < length; j++)
        if (!is_label_char (labels[i][j]))
          return FALSE;
    }
  return TRUE;
}

static gboolean
is_all (const char *text, gboolean (*is_member) (gchar))
{
  for (; *text != '\0'; text++)
    if (!is_member (*text))
      return FALSE;
  return TRUE;
}

static gboolean
is_decimal_digit (gchar c)
{
  return g_ascii_isdigit (c);
}

static gboolean
is_hex_digit (gchar c)
{
  return g_ascii_isxdigit (c);
}

/* inet_aton () and WHATWG URL parsers read a host whose last label is a
 * number ("127.1", "2130706433", "0x7f.1") as an IPv4 address, which would
 * slip past a check for 127.0.0.1 or a configured origin. */
static gboolean
ends_in_number (const char *host)
{
  const char *last = strrchr (host, '.');

  last = last != NULL ? last + 1 : host;
  if (g_ascii_strncasecmp (last, "0x", 2) == 0)
    return is_all (last + 2, is_hex_digit);
  return is_all (last, is_decimal_digit);
}

static gboolean
normalize_host (const char *raw_host, WebUrl *url, GError **error)
{
  g_autoptr (GInetAddress) address = g_inet_address_new_from_string (raw_host);
  g_autofree char *ascii = NULL;
  g_autofree char *again = NULL;

  if (address != NULL)
    {
      url->host = g_inet_address_to_string (address);
      url->host_is_loopback = g_inet_address_get_is_loopback (address);
      return TRUE;
    }

  /* Lower-cases, and turns international names into punycode. */
  ascii = g_hostname_to_ascii (raw_host);
  if (ascii == NULL || !is_dns_name (ascii))
    return set_invalid (error, "URL host is neither a DNS name nor an IP address");
  /* The ASCII form is what libcurl gets, and it must name the same host
   * when read again: a name whose conversion is not a fixed point has no
   * one meaning. */
  again = g_hostname_to_ascii (ascii);
  if (g_strcmp0 (again, ascii) != 0)
    return set_invalid (error, "URL host does not keep its meaning in ASCII form");
  if (ends_in_number (ascii))
    return set_invalid (error, "URL host is a numeric address that is not in dotted-decimal form");

  url->host_is_loopback = strcmp (ascii, "localhost") == 0;
  url->host = g_steal_pointer (&ascii);
  return TRUE;
}

static int
default_port (const char *scheme)
{
  return strcmp (scheme, "https") == 0 ? 443 : 80;
}

static gboolean
is_plain_http (const WebUrl *url)
{
  return strcmp (g_uri_get_scheme (url->uri), "http") == 0;
}

/* The rules every URL keyhold talks to must follow; query and fragment
 * are left to the caller. */
static gboolean
parse_web_url (const char *text, WebUrl *out_url, GError **error)
{
  g_auto (WebUrl) url = {
    NULL,
  };
  g_autoptr (GError) parse_error = NULL;
  const char *scheme, *host;

  if (strnlen (text, KEYHOLD_URL_POLICY_MAX_LENGTH + 1) > KEYHOLD_URL_POLICY_MAX_LENGTH)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "URL is longer than %d bytes", KEYHOLD_URL_POLICY_MAX_LENGTH);
      return FALSE;
    }

  /* ENCODED: path and query stay as sent, so percent-encoded binary data
   * in them is not an error; the host is still decoded and checked. */
  url.uri = g_uri_parse (text, G_URI_FLAGS_ENCODED, &parse_error);
  if (url.uri == NULL)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "Not a valid absolute URL: %s", parse_error->message);
      return FALSE;
    }

  /* GUri has already lower-cased the scheme. */
  scheme = g_uri_get_scheme (url.uri);
  if (strcmp (scheme, "https") != 0 && strcmp (scheme, "http") != 0)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "URL scheme must be https, not “%s”", scheme);
      return FALSE;
    }
  if (g_uri_get_userinfo (url.uri) != NULL)
    return set_invalid (error, "URL must not contain user information (“user@”)");

  host = g_uri_get_host (url.uri);
  if (host == NULL || *host == '\0')
    return set_invalid (error, "URL has no host");
  if (!normalize_host (host, &url, error))
    return FALSE;
  if (g_uri_get_port (url.uri) == 0)
    return set_invalid (error, "URL port 0 is not a valid port");

  if (is_plain_http (&url) && !url.host_is_loopback)
    return set_invalid (error,
                        "URL must use https; plain http is only allowed for a loopback host");

  *out_url = url;
  url = (WebUrl) {
    NULL,
  };
  return TRUE;
}

/* @url as it goes to libcurl: its host in the ASCII form that was checked,
 * the default port left out, path, query and fragment as given. libcurl
 * applies its own international-name rules (UTS #46 through libidn2) only
 * to a host with non-ASCII characters, and those rules differ from GLib's
 * (for "ß", say), so a host left for libcurl to convert could name another
 * server than the one approved. An ASCII host is used as it is. */
static char *
web_url_to_string (const WebUrl *url)
{
  const char *scheme = g_uri_get_scheme (url->uri);
  int port = g_uri_get_port (url->uri);

  if (port == default_port (scheme))
    port = -1;
  /* g_uri_join () puts an IPv6 host in brackets. */
  return g_uri_join (G_URI_FLAGS_ENCODED, scheme, NULL, url->host, port, g_uri_get_path (url->uri),
                     g_uri_get_query (url->uri), g_uri_get_fragment (url->uri));
}

static gboolean
parse_issuer (const char *text, WebUrl *out_url, GError **error)
{
  g_auto (WebUrl) url = {
    NULL,
  };

  if (!parse_web_url (text, &url, error))
    return FALSE;
  /* OIDC Discovery §3 and RFC 8414 §2 */
  if (g_uri_get_query (url.uri) != NULL)
    return set_invalid (error, "An issuer URL must not have a query (“?”)");
  if (g_uri_get_fragment (url.uri) != NULL)
    return set_invalid (error, "An issuer URL must not have a fragment (“#”)");

  *out_url = url;
  url = (WebUrl) {
    NULL,
  };
  return TRUE;
}

gboolean
keyhold_url_policy_check_issuer (const char *url, GError **error)
{
  g_auto (WebUrl) parsed = {
    NULL,
  };

  g_return_val_if_fail (url != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return parse_issuer (url, &parsed, error);
}

char *
keyhold_url_policy_origin (const char *url, GError **error)
{
  g_auto (WebUrl) parsed = {
    NULL,
  };
  const char *scheme;
  int port;

  g_return_val_if_fail (url != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!parse_web_url (url, &parsed, error))
    return NULL;

  scheme = g_uri_get_scheme (parsed.uri);
  port = g_uri_get_port (parsed.uri);
  if (port == default_port (scheme))
    port = -1;
  /* g_uri_join () puts an IPv6 host in brackets. */
  return g_uri_join (G_URI_FLAGS_ENCODED, scheme, NULL, parsed.host, port, "", NULL, NULL);
}

char *
keyhold_url_policy_approve (const char *url, const char *const *allowed_origins, GError **error)
{
  g_auto (WebUrl) parsed = {
    NULL,
  };
  g_autofree char *ascii_url = NULL;
  g_autofree char *origin = NULL;

  g_return_val_if_fail (url != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!parse_web_url (url, &parsed, error))
    return NULL;
  ascii_url = web_url_to_string (&parsed);
  /* The origin of what libcurl will get is the one that is checked. */
  origin = keyhold_url_policy_origin (ascii_url, error);
  if (origin == NULL)
    return NULL;
  if (allowed_origins != NULL && g_strv_contains (allowed_origins, origin))
    return g_steal_pointer (&ascii_url);

  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED,
               "%s is not one of the allowed origins", origin);
  return NULL;
}

char *
keyhold_url_policy_approve_endpoint (const char *endpoint_url, const char *issuer, GError **error)
{
  g_auto (WebUrl) issuer_url = {
    NULL,
  };
  g_auto (WebUrl) endpoint = {
    NULL,
  };

  g_return_val_if_fail (endpoint_url != NULL, NULL);
  g_return_val_if_fail (issuer != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!parse_issuer (issuer, &issuer_url, error))
    return NULL;
  if (!parse_web_url (endpoint_url, &endpoint, error))
    return NULL;
  /* RFC 6749 §3.1 and §3.2 */
  if (g_uri_get_fragment (endpoint.uri) != NULL)
    {
      set_invalid (error, "An endpoint URL must not have a fragment (“#”)");
      return NULL;
    }
  /* Only a local test provider may hand out plain http endpoints. */
  if (is_plain_http (&endpoint) && !is_plain_http (&issuer_url))
    {
      set_invalid (error, "An endpoint URL must use https when the issuer does");
      return NULL;
    }
  return web_url_to_string (&endpoint);
}
