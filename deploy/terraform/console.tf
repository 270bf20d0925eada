# The operator console (optional, off by default): an internal Application Load Balancer whose
# HTTPS listener authenticates /console/* with your OIDC identity provider and forwards only
# that path to the tasks. The agent verifies the ALB's signed x-amzn-oidc-data header
# (AIOPS_CONSOLE_AUTH=alb-oidc, signer = this ALB) and records the user in the audit trail.
# The tasks' security group admits this ALB on the HTTP port, and nothing else new.

locals {
  console_count      = var.console_enabled ? 1 : 0
  console_subnet_ids = length(var.console_subnet_ids) > 0 ? var.console_subnet_ids : var.subnet_ids
  console_environment = var.console_enabled ? merge(
    {
      AIOPS_CONSOLE_AUTH    = "alb-oidc"
      AIOPS_CONSOLE_ALB_ARN = aws_lb.console[0].arn
    },
    var.console_url == "" ? {} : { AIOPS_CONSOLE_URL = var.console_url },
  ) : {}
}

resource "aws_security_group" "console_alb" {
  count       = local.console_count
  name        = "${var.name}-console-alb"
  description = "aiops-agent console ALB: HTTPS in from the operators' networks, HTTP out to the tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "console_https" {
  for_each          = var.console_enabled ? toset(var.console_ingress_cidrs) : toset([])
  security_group_id = aws_security_group.console_alb[0].id
  description       = "Operators reach the console over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "console_to_tasks" {
  count                        = local.console_count
  security_group_id            = aws_security_group.console_alb[0].id
  description                  = "To the agent tasks' HTTP port (console and health checks)"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.agent.id
}

resource "aws_vpc_security_group_egress_rule" "console_idp" {
  count             = local.console_count
  security_group_id = aws_security_group.console_alb[0].id
  description       = "The ALB's OIDC calls to the identity provider's token and user info endpoints"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_console" {
  count                        = local.console_count
  security_group_id            = aws_security_group.agent.id
  description                  = "The console ALB alone: /console/* and target health checks"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.console_alb[0].id
}

resource "aws_lb" "console" {
  # checkov:skip=CKV2_AWS_28:internal ALB reachable from console_ingress_cidrs only, every request authenticated by OIDC before it is forwarded
  # checkov:skip=CKV_AWS_91:access logs need a bucket of yours: set console_access_logs_bucket
  count                      = local.console_count
  name                       = "${var.name}-console"
  internal                   = true
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.console_alb[0].id]
  subnets                    = local.console_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.console_deletion_protection
  idle_timeout               = 60

  dynamic "access_logs" {
    for_each = var.console_access_logs_bucket == "" ? [] : [var.console_access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = "${var.name}-console"
      enabled = true
    }
  }
}

resource "aws_lb_target_group" "console" {
  # checkov:skip=CKV_AWS_378:TLS ends at the internal ALB; the task serves plain HTTP inside the VPC, reachable from this ALB alone
  count       = local.console_count
  name        = "${var.name}-console"
  port        = var.http_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "console" {
  count             = local.console_count
  load_balancer_arn = aws_lb.console[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.console_certificate_arn

  # Anything but /console/*: nothing of the agent (no /metrics, no /healthz) through this ALB.
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "not found"
      status_code  = "404"
    }
  }

  lifecycle {
    precondition {
      condition     = var.console_certificate_arn != "" && var.console_oidc != null
      error_message = "console_enabled needs console_certificate_arn and console_oidc."
    }
  }
}

resource "aws_lb_listener_rule" "console" {
  count        = local.console_count
  listener_arn = aws_lb_listener.console[0].arn
  priority     = 10

  condition {
    path_pattern {
      values = ["/console", "/console/*"]
    }
  }

  action {
    type  = "authenticate-oidc"
    order = 1
    authenticate_oidc {
      issuer                     = var.console_oidc.issuer
      authorization_endpoint     = var.console_oidc.authorization_endpoint
      token_endpoint             = var.console_oidc.token_endpoint
      user_info_endpoint         = var.console_oidc.user_info_endpoint
      client_id                  = var.console_oidc.client_id
      client_secret              = var.console_oidc_client_secret
      scope                      = "openid email"
      session_timeout            = var.console_session_seconds
      on_unauthenticated_request = "authenticate"
    }
  }

  action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.console[0].arn
  }
}
