/* SPDX-License-Identifier: MIT */
/*
 * admin.h - what the admin API's files share: a request as an endpoint sees
 * it, the reply it fills, and the endpoints that change the config
 * (admin_config.c).
 */
#ifndef PX_ADMIN_H
#define PX_ADMIN_H

#include "proxy/json.h"
#include "proxy/proxy.h"

typedef struct admin_req {
    px_server_t *srv;
    const px_snapshot_t *snap; /* current when the request arrived; held until the reply is sent */
    char name[128];            /* the NAME of /routes/NAME/... */
    const char *body;          /* NUL-terminated */
    size_t body_len;
} admin_req_t;

typedef struct admin_reply {
    int status;
    const char *content_type;
    char body[4096];
    size_t len;
    const char *big_body;  /* when set, sent instead of `body` (borrowed, e.g. the config) */
    char *owned_body;      /* like big_body, freed after the reply */
    char extra_header[96]; /* "" or one "name: value\r\n" line */
} admin_reply_t;

typedef void admin_fn(const admin_req_t *rq, admin_reply_t *out);

/** Replies `text` as text/plain. */
void px_admin_text(admin_reply_t *out, int status, const char *text);
/** Replies {"error": message}. */
void px_admin_error(admin_reply_t *out, int status, const char *message);
/** Replies the JSON in `sb` (takes its storage). */
void px_admin_json(admin_reply_t *out, int status, px_sb_t *sb);

admin_fn px_admin_put_config, px_admin_reload, px_admin_put_weights, px_admin_get_canary,
    px_admin_rollback, px_admin_promote;

#endif /* PX_ADMIN_H */
