/* Unit tests: what a production or delivery error means for an output
 * (sk_output_classify): sent again, sent smaller, or parked as refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "output.h"

static void too_large_is_cut(void **state)
{
    (void)state;
    assert_int_equal(sk_output_classify(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), SK_OUT_TOO_LARGE);
    assert_int_equal(sk_output_classify(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE), SK_OUT_TOO_LARGE);
}

/* Retrying will not cure these: the operator must act. */
static void refused_for_good(void **state)
{
    (void)state;
    static const rd_kafka_resp_err_t codes[] = {
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,             RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,            RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
        RD_KAFKA_RESP_ERR_INVALID_RECORD,             RD_KAFKA_RESP_ERR__INVALID_ARG,
    };
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (sk_output_classify(codes[i]) != SK_OUT_REFUSED)
            fail_msg("%s is not classified as refused", rd_kafka_err2name(codes[i]));
}

/* Flow control, timeouts, brokers away, and the purge at exit: send again. */
static void transient_is_sent_again(void **state)
{
    (void)state;
    static const rd_kafka_resp_err_t codes[] = {
        RD_KAFKA_RESP_ERR__QUEUE_FULL,       RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
        RD_KAFKA_RESP_ERR__TRANSPORT,        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR__PURGE_QUEUE,      RD_KAFKA_RESP_ERR__PURGE_INFLIGHT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
    };
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (sk_output_classify(codes[i]) != SK_OUT_TRANSIENT)
            fail_msg("%s is not classified as transient", rd_kafka_err2name(codes[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(too_large_is_cut),
        cmocka_unit_test(refused_for_good),
        cmocka_unit_test(transient_is_sent_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
