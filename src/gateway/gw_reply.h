/* gw_reply.h -- queueing a reply on a libmicrohttpd connection (gw_reply.c). Internal to
 * src/gateway: gateway.c and gw_reply.c include it. */
#ifndef ORCH_GW_REPLY_H
#define ORCH_GW_REPLY_H

#include <microhttpd.h>

#include "gw_internal.h"

/* Queues rep on conn and clears it (gw_reply_clear); libmicrohttpd's result. */
enum MHD_Result gw_send_reply(struct MHD_Connection *conn, GwReply *rep);

#endif
